package verdict

import (
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
)

func begin(step string) contract.Event { return contract.Event{Kind: contract.KindBegin, Step: step} }

func end(step, status string, kmsg ...string) contract.Event {
	return contract.Event{Kind: contract.KindEnd, Step: step, Status: status, Kmsg: kmsg, TaintBefore: 0, TaintAfter: 0}
}

func TestJudge(t *testing.T) {
	steps := []string{"insmod", "reply", "ack"}
	tests := []struct {
		name     string
		run      Input
		want     map[string]string // step -> status
		reason   map[string]string // step -> substring of its first reason
		logFails bool
	}{
		{
			name: "all pass",
			run: Input{Events: []contract.Event{
				begin("insmod"), end("insmod", contract.StatusPass, "NetlinkGreetingsLKM: loaded"),
				begin("reply"), end("reply", contract.StatusPass),
				begin("ack"), end("ack", contract.StatusPass),
				{Kind: contract.KindDone},
			}},
			want: map[string]string{"insmod": "pass", "reply": "pass", "ack": "pass"},
		},
		{
			name: "a later step's blame fails the earlier step, not itself",
			run: Input{Events: []contract.Event{
				begin("insmod"), end("insmod", contract.StatusPass),
				begin("reply"), end("reply", contract.StatusPass),
				begin("ack"), {Kind: contract.KindEnd, Step: "ack", Status: contract.StatusPass,
					Blame: []contract.Blame{{Step: "reply", Reason: "kmemleak: 1 unreferenced object(s) allocated during this step"}}},
			}},
			want:   map[string]string{"insmod": "pass", "reply": "fail", "ack": "pass"},
			reason: map[string]string{"reply": "allocated during this step"},
		},
		{
			name: "prober failure keeps its detail",
			run: Input{Events: []contract.Event{
				begin("insmod"), end("insmod", contract.StatusPass),
				begin("reply"), end("reply", contract.StatusPass),
				begin("ack"), {Kind: contract.KindEnd, Step: "ack", Status: contract.StatusFail, Detail: "no ack for seq 2 within 2s"},
			}},
			want:   map[string]string{"insmod": "pass", "reply": "pass", "ack": "fail"},
			reason: map[string]string{"ack": "no ack for seq 2"},
		},
		{
			name: "kernel warning in a step window fails that step only",
			run: Input{Events: []contract.Event{
				begin("insmod"), end("insmod", contract.StatusPass),
				begin("reply"), end("reply", contract.StatusPass, "WARNING: CPU: 0 PID: 77 at greet.c:10 greet_rcv+0x1/0x2 [NetlinkGreetingsLKM]", "Call Trace:"),
				begin("ack"), end("ack", contract.StatusPass),
			}, Console: []string{"[ 1.0] WARNING: CPU: 0 PID: 77 at greet.c:10"}},
			want:     map[string]string{"insmod": "pass", "reply": "fail", "ack": "pass"},
			reason:   map[string]string{"reply": "WARNING"},
			logFails: true,
		},
		{
			name: "new taint fails, out-of-tree and unsigned do not",
			run: Input{Events: []contract.Event{
				begin("insmod"), {Kind: contract.KindEnd, Step: "insmod", Status: contract.StatusPass, TaintAfter: 1<<12 | 1<<13},
				begin("reply"), {Kind: contract.KindEnd, Step: "reply", Status: contract.StatusPass, TaintBefore: 1<<12 | 1<<13, TaintAfter: 1<<12 | 1<<13 | 1<<9},
				begin("ack"), end("ack", contract.StatusPass),
			}},
			want:   map[string]string{"insmod": "pass", "reply": "fail", "ack": "pass"},
			reason: map[string]string{"reply": "new taint W"},
		},
		{
			name: "panic is pinned to the running step",
			run: Input{
				Events:  []contract.Event{begin("insmod"), end("insmod", contract.StatusPass), begin("reply")},
				Console: []string{"BUG: kernel NULL pointer dereference, address: 0000000000000000", "Kernel panic - not syncing: Fatal exception"},
			},
			want:     map[string]string{"insmod": "pass", "reply": "fail", "ack": "fail"},
			reason:   map[string]string{"reply": "panicked during the step", "ack": "never ran: the kernel panicked"},
			logFails: true,
		},
		{
			name: "hang is pinned to the running step",
			run: Input{
				Events:     []contract.Event{begin("insmod"), end("insmod", contract.StatusPass), begin("reply")},
				Console:    []string{"last words"},
				Hung:       true,
				HangReason: "no word from the prober for 1m30s",
			},
			want:   map[string]string{"insmod": "pass", "reply": "fail", "ack": "fail"},
			reason: map[string]string{"reply": "hung during the step", "ack": "never ran: the guest hung"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge(tt.run, steps, nil)
			for _, s := range r.Steps {
				if s.Status != tt.want[s.Name] {
					t.Errorf("step %s: unexpected status:\n- want %s\n-  got %s (%v)", s.Name, tt.want[s.Name], s.Status, s.Reasons)
				}
				if want := tt.reason[s.Name]; want != "" && (len(s.Reasons) == 0 || !strings.Contains(s.Reasons[0], want)) {
					t.Errorf("step %s: unexpected reason:\n- want it to contain %q\n-  got %q", s.Name, want, s.Reasons)
				}
			}
			if r.Log.Failed() != tt.logFails {
				t.Errorf("kernel-log failed = %v, want %v (%v)", r.Log.Failed(), tt.logFails, r.Log.Reasons)
			}
		})
	}
}

func TestKernelReports(t *testing.T) {
	bad := []string{
		"BUG: unable to handle page fault for address: ffffa0e1",
		"BUG skbuff_head_cache (Tainted: G           OE     ): Poison overwritten",
		"WARNING: CPU: 0 PID: 1 at net/netlink/af_netlink.c:1 x+0x1/0x2",
		"Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"KFENCE: out-of-bounds read in greet_rcv+0x1/0x2",
		"UBSAN: array-index-out-of-bounds in greet.c:12:3",
		"BUG: sleeping function called from invalid context at mm/slab.h:1",
		"watchdog: BUG: soft lockup - CPU#0 stuck for 22s!",
		"list_add corruption. next->prev should be prev",
		"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
		// The debug kernel's detectors, as 6.12 prints them.
		"BUG: KASAN: slab-out-of-bounds in greet_msg+0x1a2/0x2b0 [NetlinkGreetingsLKM]",
		"BUG: KASAN: slab-use-after-free in greet_reply+0x55/0x1f0 [NetlinkGreetingsLKM]",
		"WARNING: possible circular locking dependency detected",
		"WARNING: inconsistent lock state",
		"WARNING: suspicious RCU usage",
		"BUG: KFENCE: use-after-free read in greet_msg+0x1/0x2",
		"UBSAN: shift-out-of-bounds in kmod/NetlinkGreetingsLKM.c:99:12",
	}
	good := []string{
		"NetlinkGreetingsLKM: loaded, netlink protocol 31",
		"NetlinkGreetingsLKM: greeting from port 123: hello",
		"Run /init as init process",
		"kmodtest: begin step reply",
		"debug: unmapping init [mem 0xffffffffa0000000-0xffffffffa0200fff]",
		"kmemleak: Kernel memory leak detector initialized (mem pool available: 15683)",
		"kasan: KernelAddressSanitizer initialized (generic)",
		"Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
		"... MAX_LOCKDEP_SUBCLASSES:  8",
		"kfence: initialized - using 2097152 bytes for 255 objects at 0x(ptrval)-0x(ptrval)",
	}
	for _, l := range bad {
		if len(KernelReports([]string{l})) != 1 {
			t.Errorf("not detected as a kernel report: %q", l)
		}
	}
	for _, l := range good {
		if got := KernelReports([]string{l}); len(got) != 0 {
			t.Errorf("detected as a kernel report but is harmless: %q", l)
		}
	}
}

func TestJudgeExpectedLogLine(t *testing.T) {
	run := Input{Events: []contract.Event{
		begin("insmod"), end("insmod", contract.StatusPass, "NetlinkGreetingsLKM: loaded, netlink protocol 31"),
		begin("rmmod"), end("rmmod", contract.StatusPass),
	}}
	r := Judge(run, []string{"insmod", "rmmod"}, map[string]string{
		"insmod": "NetlinkGreetingsLKM: loaded, netlink protocol 31",
		"rmmod":  "NetlinkGreetingsLKM: unloaded",
	})
	if s, _ := r.Step("insmod"); s.Failed() {
		t.Errorf("insmod failed although its line is there: %v", s.Reasons)
	}
	if s, _ := r.Step("rmmod"); !s.Failed() || !strings.Contains(s.Reasons[0], "unloaded") {
		t.Errorf("rmmod without its farewell line: want a failure naming it, got %s %v", s.Status, s.Reasons)
	}
}

// TestBootFailureIsReportedOnce: a guest that never started the prober
// is one failure of the boot, with QEMU's words, not one per step.
func TestBootFailureIsReportedOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  Input
		want string
	}{
		{name: "QEMU refused", run: Input{Exit: "exit status 1: qemu: linux kernel too old to load a ram disk"}, want: "never started the prober: QEMU exited early (exit status 1: qemu: linux kernel too old"},
		{name: "early panic", run: Input{Console: []string{"Kernel panic - not syncing: VFS: Unable to mount root fs"}}, want: "never started the prober: the kernel panicked"},
		{name: "silent guest", run: Input{Hung: true, HangReason: "no word from the prober for 1m30s"}, want: "never started the prober: the guest hung"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge(tt.run, []string{"insmod", "reply", "ack"}, nil)
			if len(r.Steps) != 0 {
				t.Errorf("steps judged after a failed boot: %+v", r.Steps)
			}
			if !r.Boot.Failed() || len(r.Boot.Reasons) != 1 || !strings.Contains(r.Boot.Reasons[0], tt.want) {
				t.Fatalf("boot verdict %+v, want one failure containing %q", r.Boot, tt.want)
			}
			if first, ok := r.FirstFailure(); !ok || first.Name != BootStep {
				t.Errorf("first failure %q, want %s", first.Name, BootStep)
			}
		})
	}
}

// TestFailedInsmodQuotesTheKernel: a refused module is one failure that
// carries the kernel's reason, not only the errno.
func TestFailedInsmodQuotesTheKernel(t *testing.T) {
	const why = "NetlinkGreetingsLKM: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time"
	ins := end("insmod", contract.StatusFail, why)
	ins.Detail = "insmod /lib/modules/kmodtest/NetlinkGreetingsLKM.ko \"\": exec format error"
	skip := func(step string) contract.Event {
		e := end(step, contract.StatusSkip)
		e.Detail = "the module is not loaded: insmod failed (see the insmod step)"
		return e
	}
	run := Input{Events: []contract.Event{begin("insmod"), ins, begin("reply"), skip("reply"), begin("rmmod"), skip("rmmod")}}
	r := Judge(run, []string{"insmod", "reply", "rmmod"}, nil)
	var failed []string
	for _, s := range append(r.Steps, r.Log) {
		if s.Failed() {
			failed = append(failed, s.Name)
		}
	}
	if len(failed) != 1 || failed[0] != "insmod" {
		t.Fatalf("failed steps %v, want insmod alone", failed)
	}
	s, _ := r.Step("insmod")
	if !strings.Contains(s.Reasons[0], "exec format error; the kernel said: "+why) {
		t.Errorf("insmod reason lacks the kernel's words: %q", s.Reasons)
	}
	if len(s.Evidence) != 1 || s.Evidence[0] != why {
		t.Errorf("evidence %q, want the kernel line", s.Evidence)
	}
	if s, _ := r.Step("reply"); s.Status != contract.StatusSkip || !strings.Contains(s.Reasons[0], "insmod failed") {
		t.Errorf("reply: %s %q, want a skip naming insmod", s.Status, s.Reasons)
	}
}

// TestNewTaintIsOneReason: a taint the host's old table did not know (J)
// is named, and a new taint is one reason, not one from the prober and
// one from the host.
func TestNewTaintIsOneReason(t *testing.T) {
	e := end("reply", contract.StatusPass)
	e.TaintBefore, e.TaintAfter = 1<<12|1<<13, 1<<12|1<<13|1<<19
	r := Judge(Input{Events: []contract.Event{begin("reply"), e}}, []string{"reply"}, nil)
	s, _ := r.Step("reply")
	want := []string{"the step tainted the kernel: new taint J (fwctl) (was OE, now OEJ)"}
	if !s.Failed() || !slices.Equal(s.Reasons, want) {
		t.Errorf("reasons %q, want %q", s.Reasons, want)
	}
}

// TestHungStepQuotesItsOwnReport: a step that hung is pinned on the
// kernel report printed after it began (found by the prober's console
// line), not on one printed while the guest booted.
func TestHungStepQuotesItsOwnReport(t *testing.T) {
	console := []string{
		"[   30.350296] rcu: INFO: rcu_preempt self-detected stall on CPU",
		"[   30.358069] Call Trace:",
		contract.ConsoleBegin("insmod"),
		"kmodtest: step insmod: pass (33 ms)",
		contract.ConsoleBegin("socket-gone"),
		"[   46.890425] BUG: unable to handle page fault for address: ffffffffc0204180",
	}
	run := Input{Events: []contract.Event{begin("insmod"), end("insmod", contract.StatusPass), begin("socket-gone")},
		Console: console, Hung: true, HangReason: "no word from the prober for 30s"}
	r := Judge(run, []string{"insmod", "socket-gone"}, nil)
	s, _ := r.Step("socket-gone")
	all := strings.Join(append(s.Reasons, s.Evidence...), "\n")
	if !strings.Contains(all, "unable to handle page fault") {
		t.Errorf("the step's own report is not quoted:\n%s", all)
	}
	if reasons := strings.Join(s.Reasons, "\n"); strings.Contains(reasons, "rcu_preempt self-detected stall") {
		t.Errorf("a report from before the step is given as its reason:\n%s", reasons)
	}
}

// TestHungStepReportBeforeConsoleBegin: the prober's begin line may reach
// the console after the kernel started the step's report; the kmsg
// marker, ordered with the kernel's lines, bounds the window instead.
func TestHungStepReportBeforeConsoleBegin(t *testing.T) {
	console := []string{
		"[   12.000000] rcu: INFO: rcu_preempt self-detected stall on CPU",
		contract.ConsoleBegin("rmmod"),
		"kmodtest: step rmmod: pass (37 ms)[   13.429000] BUG: unable to handle page fault for address: ffffffffc0204180",
	}
	for range 30 { // an Oops's register dump, longer than the quoted tail
		console = append(console, "[   13.429411] R13: 0000000000000000 R14: 000023940aee74a0")
	}
	console = append(console, contract.ConsoleBegin("socket-gone"))
	run := Input{Events: []contract.Event{begin("rmmod"), end("rmmod", contract.StatusPass), begin("socket-gone")},
		Console: console, Hung: true, HangReason: "no word from the prober for 30s"}
	r := Judge(run, []string{"rmmod", "socket-gone"}, nil)
	s, _ := r.Step("socket-gone")
	if reasons := strings.Join(s.Reasons, "\n"); !strings.Contains(reasons, "unable to handle page fault") {
		t.Errorf("the step's report is not its reason:\n%s", reasons)
	}
}

// TestEndedStepQuotesTheConsoleReport: when the prober's kernel window lost
// a report's first line, the reason comes from the console, which has it.
func TestEndedStepQuotesTheConsoleReport(t *testing.T) {
	console := []string{
		"kmodtest: step shared-socket: pass (800 ms)",
		contract.ConsoleBegin("never-reads"),
		"[    5.100000] BUG skbuff_head_cache (Tainted: G    B      OE): Poison overwritten",
		"[    5.100100] Padding  ffff888007370478: 5a 5a 5a 5a",
		"[    5.100200] Call Trace:",
		"kmodtest: step never-reads: pass (900 ms)",
	}
	e := end("never-reads", contract.StatusPass)
	e.Kmsg = console[3:5] // the ring buffer overwrote the BUG line
	run := Input{Events: []contract.Event{begin("shared-socket"), end("shared-socket", contract.StatusPass), begin("never-reads"), e}, Console: console}
	r := Judge(run, []string{"shared-socket", "never-reads"}, nil)
	s, _ := r.Step("never-reads")
	if !s.Failed() {
		t.Fatal("a step whose kernel window holds a Call Trace passed")
	}
	if reasons := strings.Join(s.Reasons, "\n"); !strings.Contains(reasons, "BUG skbuff_head_cache") {
		t.Errorf("the reason does not name the report's first line:\n%s", reasons)
	}
}
