package main

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/kernelio"
)

func leakObject(addr string, jiffies uint64, frames ...string) kernelio.LeakObject {
	return kernelio.LeakObject{Addr: addr, Size: 64, Jiffies: jiffies, Backtrace: frames,
		Record: "unreferenced object " + addr + "\n" + strings.Join(frames, "\n")}
}

func TestLeakLedgerJudge(t *testing.T) {
	l := &leakLedger{
		baseline: map[string]bool{},
		seen:     map[string]bool{},
		marks: []stepMark{
			{step: "insmod", label: "insmod", start: 1000},
			{step: "empty-greeting", label: "empty-greeting", start: 2000},
			{step: "insmod-faults", label: "insmod-faults", start: 3000},
			{step: "insmod-faults", label: "insmod-faults, fault point 4", start: 3100},
			{step: "reload", label: "reload", start: 4000},
		},
	}
	boot := leakObject("0x1", 10, "acpi_os_allocate+0x10/0x20")
	l.baseline[boot.Signature()] = true
	objs := []kernelio.LeakObject{
		leakObject("0x2", 999, "kmalloc+0x1/0x2", "early_thing+0x1/0x2"),              // before the first step
		leakObject("0x3", 2500, "sk_alloc+0x32/0x3c0", "__netlink_create+0x34/0x150"), // the socket
		leakObject("0x4", 4100, "kmalloc+0x1/0x2", "greet_msg+0x1/0x2 [NetlinkGreetingsLKM]"),
		leakObject("0x5", 3150, "kmalloc+0x1/0x2", "0xffffffffa0004101"), // unloaded module code
		leakObject("0x6", 2600, "acpi_os_allocate+0x10/0x20"),            // like the baseline's
	}
	j := l.judge(objs, "NetlinkGreetingsLKM", "insmod-faults")
	if j.kernel != 2 {
		t.Errorf("kernel's own: want 2 (before the first step, and the baseline's code), got %d", j.kernel)
	}
	// The scanning step fails on the module's objects it allocated; the
	// module's objects of other steps are blamed on those.
	if len(j.module) != 1 || !strings.HasPrefix(j.module[0], "allocated during insmod-faults, fault point 4:\n") {
		t.Errorf("module's objects of the scanning step: %q", j.module)
	}
	if len(j.moduleSteps) != 1 || j.moduleSteps[0] != "reload" || len(j.moduleByStep["reload"]) != 1 ||
		!strings.Contains(j.moduleByStep["reload"][0], "greet_msg") {
		t.Errorf("module's objects of other steps: %v %q", j.moduleSteps, j.moduleByStep)
	}
	if len(j.steps) != 1 || j.steps[0] != "empty-greeting" || len(j.byStep["empty-greeting"]) != 1 ||
		!strings.Contains(j.byStep["empty-greeting"][0], "sk_alloc") {
		t.Errorf("blamed by step: %v %q", j.steps, j.byStep)
	}
	// Each object is judged once: a second scan reporting them again adds nothing.
	again := l.judge(objs, "NetlinkGreetingsLKM", "insmod-faults")
	if again.kernel != 0 || len(again.module) != 0 || len(again.moduleByStep) != 0 || len(again.byStep) != 0 {
		t.Errorf("second judgement of the same objects: %+v", again)
	}
	if err := strandedError(j.byStep["empty-greeting"], "netns-deleted"); !strings.Contains(err.Error(), "found by the scan after netns-deleted") {
		t.Errorf("strandedError: %v", err)
	}
}

func TestPlanLeakScan(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{contract.FullSteps, "netns-faults reload"},
		{[]string{contract.StepInsmod, contract.StepLeak, contract.StepRmmod}, "leak"},
		{[]string{contract.StepInsmod, contract.StepReload}, "reload"},
		{contract.CoreSteps, ""},
	} {
		var p prober
		p.planLeakScan(tc.names)
		var got []string
		for _, name := range tc.names {
			if p.leakScans[name] {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("steps %v: kmemleak scans after %q, want %q", tc.names, got, tc.want)
		}
	}
}
