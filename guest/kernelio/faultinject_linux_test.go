package kernelio

import "testing"

func TestFaultStackHas(t *testing.T) {
	inInit := []string{
		"FAULT_INJECTION: forcing a failure.\\x0aname failslab, interval 1, probability 0, space 0, times 1",
		"CPU: 0 UID: 0 PID: 80 Comm: prober Tainted: G           O       6.12.118-kmodtest-debug #1",
		"Call Trace:",
		" <TASK>",
		" should_failslab+0x9/0x20",
		" __kmalloc_cache_noprof+0x5d/0x390",
		" ? do_init_module+0x5c/0x230",
		" </TASK>",
	}
	if !faultStackHas(inInit, "do_init_module") {
		t.Error("a failure under do_init_module: not found")
	}
	loader := []string{
		"FAULT_INJECTION: forcing a failure.",
		"Call Trace:",
		" load_module+0x1a2/0x2c40",
		" init_module_from_file+0xd1/0x130",
	}
	if faultStackHas(loader, "do_init_module") {
		t.Error("a failure in load_module: reported under do_init_module")
	}
	noInjection := []string{" do_init_module+0x5c/0x230"}
	if faultStackHas(noInjection, "do_init_module") {
		t.Error("a stack without fault injection's report counts")
	}
}
