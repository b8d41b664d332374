package verdict

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
)

// Advisories and notices Debian's kernels print at boot on the CPUs
// people have: never a module's failure. From the consoles in
// testdata/boot (Debian 5.10 to 7.3 under QEMU's Intel and AMD models)
// and from public boot logs of such hosts.
var advisories = []string{
	"[    0.151226] RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!",
	"[    0.160011] Speculative Return Stack Overflow: WARNING: See https://kernel.org/doc/html/latest/admin-guide/hw-vuln/srso.html for mitigation options.",
	"Speculative Return Stack Overflow: Vulnerable: Safe RET, no microcode",
	"Speculative Return Stack Overflow: Mitigation: safe RET",
	"Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
	"Spectre V2 : Kernel not compiled with retpoline; no mitigation available!",
	"MDS: Vulnerable: Clear CPU buffers attempted, no microcode",
	"MDS: WARNING: Microcode update is needed",
	"MDS CPU bug present and SMT on, data leak possible. See https://www.kernel.org/doc/html/latest/admin-guide/hw-vuln/mds.html for more details.",
	"MMIO Stale Data: Vulnerable: Clear CPU buffers attempted, no microcode",
	"MMIO Stale Data CPU bug present and SMT on, data leak possible. See https://www.kernel.org/doc/html/latest/admin-guide/hw-vuln/processor_mmio_stale_data.html for more details.",
	"TAA: Vulnerable: Clear CPU buffers attempted, no microcode",
	"TAA CPU bug present and SMT on, data leak possible. See https://www.kernel.org/doc/html/latest/admin-guide/hw-vuln/tsx_async_abort.html for more details.",
	"GDS: Unknown: Dependent on hypervisor status",
	"GDS: Microcode update needed! Disabling AVX as mitigation.",
	"SRBDS: Unknown: Dependent on hypervisor status",
	"ITS: Mitigation: Aligned branch/return thunks",
	"Transient Scheduler Attacks: Vulnerable: Clear CPU buffers attempted, no microcode",
	"Register File Data Sampling: Vulnerable: No microcode",
	"RETBleed: Vulnerable",
	"Speculative Store Bypass: Vulnerable",
	"[Firmware Bug]: TSC_DEADLINE disabled due to Errata; please update microcode to version: 0x3a (or later)",
	"[Firmware Bug]: ACPI: BIOS _OSI(Linux) query ignored",
	"ACPI BIOS Error (bug): Could not resolve symbol [\\_SB.PCI0.LPCB.HEC.ECAV], AE_NOT_FOUND (20220331/psargs-330)",
	"AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.",
	"PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" and report a bug",
	"x86/split lock detection: #AC: crashing the kernel on kernel split_locks and warning on user-space split_locks",
	"clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as unstable because the skew is too large:",
	"tsc: Marking TSC unstable due to clocksource watchdog",
	"workqueue: drain_vmap_area_work hogged CPU for >10000us 4 times, consider switching to WQ_UNBOUND",
	"hrtimer: interrupt took 1318262 ns",
	"kfence: initialized - using 2097152 bytes for 255 objects at 0x(ptrval)-0x(ptrval)",
}

// reports are real kernel reports, each in a form the kernel prints.
var reports = []string{
	"------------[ cut here ]------------",
	"[   12.345678] WARNING: CPU: 1 PID: 123 at net/netlink/af_netlink.c:1234 netlink_sendmsg+0x12/0x34",
	"WARNING: CPU: 0 PID: 1 at kmod/NetlinkGreetingsLKM.c:88 greet_msg+0x1a/0x2b [NetlinkGreetingsLKM]",
	// The prober's console line and a kernel line glued together.
	"kmodtest: step rmmod: pass (37 ms)[   13.429000] WARNING: CPU: 0 PID: 9 at kernel/module/main.c:1 x+0x1/0x2",
	"WARNING: possible recursive locking detected",
	"WARNING: bad unlock balance detected!",
	"WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
	"WARNING: suspicious RCU usage",
	"BUG: scheduling while atomic: prober/123/0x00000002",
	"BUG: kernel NULL pointer dereference, address: 0000000000000008",
	"BUG: Bad page state in process prober  pfn:0x1234",
	"BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!",
	"kernel BUG at mm/slub.c:4321!",
	"invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
	"Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI",
	"Internal error: Oops: 0000000096000005 [#1] SMP",
	"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
	"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [prober:1]",
	"NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
	"refcount_t: underflow; use-after-free.",
	"INFO: task prober:123 blocked for more than 120 seconds.",
	"unchecked MSR access error: WRMSR to 0x48 (tried to write 0x0000000000000004) at rIP: 0xffffffff8107d5a4 (native_write_msr+0x4/0x20)",
	"stack-protector: Kernel stack is corrupted in: greet_msg+0x1/0x2",
	"================================================================================",
	"UBSAN: array-index-out-of-bounds in kmod/NetlinkGreetingsLKM.c:120:14",
	"BUG: KFENCE: out-of-bounds read in greet_msg+0x1/0x2",
	"Kernel panic - not syncing: Fatal exception",
}

func TestAdvisoriesAreNotReports(t *testing.T) {
	for _, l := range advisories {
		if IsKernelReport(l) {
			t.Errorf("an advisory taken for a kernel report: %q", l)
		}
	}
	for _, l := range reports {
		if strings.Trim(l, "=") == "" {
			continue // lockdep's and UBSAN's ruler: the next line is the report
		}
		if !IsKernelReport(l) {
			t.Errorf("a kernel report not recognised: %q", l)
		}
	}
}

// TestRealBootConsoles: Debian's kernels booted under QEMU's Intel and
// AMD models print advisories with WARNING: in them (12 of 25 boots), and
// no report: the boot and the kernel log pass.
func TestRealBootConsoles(t *testing.T) {
	files, err := filepath.Glob("testdata/boot/*.txt.gz")
	if err != nil || len(files) == 0 {
		t.Fatalf("no boot consoles in testdata/boot: %v", err)
	}
	bareWarning := regexp.MustCompile(`\bWARNING:`) // what the verdict matched before
	boots, warned := 0, 0
	for _, f := range files {
		for title, console := range readConsoles(t, f) {
			boots++
			if len(KernelReports(console)) > 0 {
				t.Errorf("%s: kernel reports found: %q", title, KernelReports(console))
			}
			for _, l := range console {
				if bareWarning.MatchString(l) {
					warned++
					break
				}
			}
			steps := []string{contract.StepInsmod}
			run := Input{
				Events:  []contract.Event{begin(contract.StepInsmod), end(contract.StepInsmod, contract.StatusPass)},
				Console: append(append([]string(nil), console...), contract.ConsoleBegin(contract.StepInsmod), "kmodtest: step insmod: pass (30 ms)"),
			}
			r := Judge(run, steps, nil)
			if first, failed := r.FirstFailure(); failed {
				t.Errorf("%s: %s failed: %q", title, first.Name, first.Reasons)
			}
		}
	}
	if boots != 25 || warned == 0 {
		t.Errorf("%d boots, %d with a WARNING: advisory: the testdata lost its point", boots, warned)
	}
}

// readConsoles reads a testdata file of boot consoles, each after a
// "=== title" line.
func readConsoles(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	title := ""
	s := bufio.NewScanner(z)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "=== "); ok {
			title = rest
			continue
		}
		out[title] = append(out[title], s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBootReportBlamesTheBoot: a kernel report printed before the first
// step (a WARN from a boot option, say) fails the boot, once, with the
// line; no step and not the kernel log.
func TestBootReportBlamesTheBoot(t *testing.T) {
	console := []string{
		"[    0.500000] ------------[ cut here ]------------",
		"[    0.500001] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:4321 __alloc_pages+0x1/0x2",
		"[    0.500002] Call Trace:",
		"[    1.200000] Run /init as init process",
		"[    2.000000] " + contract.KmsgMarker + "insmod",
		contract.ConsoleBegin("insmod"),
		"[    2.100000] NetlinkGreetingsLKM: loaded, netlink protocol 31",
		"kmodtest: step insmod: pass (40 ms)",
		contract.ConsoleBegin("reply"),
		"kmodtest: step reply: pass (20 ms)",
	}
	run := Input{Events: []contract.Event{
		begin("insmod"), end("insmod", contract.StatusPass, "NetlinkGreetingsLKM: loaded, netlink protocol 31"),
		begin("reply"), end("reply", contract.StatusPass),
	}, Console: console}
	r := Judge(run, []string{"insmod", "reply"}, nil)
	if !r.Boot.Failed() || len(r.Boot.Reasons) != 1 || !strings.Contains(r.Boot.Reasons[0], "before the module was loaded") || !strings.Contains(r.Boot.Reasons[0], "cut here") {
		t.Errorf("boot verdict %s %q, want one failure naming the report before the module was loaded", r.Boot.Status, r.Boot.Reasons)
	}
	if len(r.Boot.Evidence) == 0 || !strings.Contains(strings.Join(r.Boot.Evidence, "\n"), "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c") {
		t.Errorf("boot evidence lacks the WARN line: %q", r.Boot.Evidence)
	}
	for _, s := range append(r.Steps, r.Log) {
		if s.Failed() {
			t.Errorf("%s blamed for a report printed at boot: %q", s.Name, s.Reasons)
		}
	}
	if first, _ := r.FirstFailure(); first.Name != BootStep {
		t.Errorf("first failure %q, want %s", first.Name, BootStep)
	}

	// The same report after the first step began is the steps' concern.
	late := append(append([]string(nil), console[4:]...), console[:3]...)
	r = Judge(Input{Events: run.Events, Console: late}, []string{"insmod", "reply"}, nil)
	if r.Boot.Failed() || !r.Log.Failed() {
		t.Errorf("a report after the module's load: boot failed %v, kernel-log failed %v; want the log's failure only", r.Boot.Failed(), r.Log.Failed())
	}
}

// TestHungStepQuotesASplitReport: the console shows the Oops that hung
// socket-gone before the prober's begin line of that step (two writers
// out of order, seen in CI on 6.1-hardened): its BUG line falls in
// rmmod's window and its Call Trace in socket-gone's. The hung step
// quotes both, so the BUG line is named.
func TestHungStepQuotesASplitReport(t *testing.T) {
	console := []string{
		contract.ConsoleBegin("rmmod"),
		"[   14.984687] BUG: unable to handle page fault for address: ffffffffc0204180",
		"[   14.984687] Oops: 0000 [#1] PREEMPT SMP NOPTI",
		"kmodtest: step rmmod: pass (57 ms)",
		contract.ConsoleBegin("socket-gone"),
		"[   14.984687] Call Trace:",
		"[   14.984687]  netlink_create+0x9b/0x240",
	}
	run := Input{Events: []contract.Event{begin("rmmod"), end("rmmod", contract.StatusPass), begin("socket-gone")},
		Console: console, Hung: true, HangReason: "no word from the prober for 30s after the kernel reported an error"}
	r := Judge(run, []string{"rmmod", "socket-gone"}, nil)
	s, _ := r.Step("socket-gone")
	reasons := strings.Join(s.Reasons, "\n")
	for _, want := range []string{"hung during the step", "during the step: [   14.984687] Call Trace:", "during rmmod, before the step: [   14.984687] BUG: unable to handle page fault"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("the hung step's reasons lack %q:\n%s", want, reasons)
		}
	}
}

// TestHungStepQuotesTheReportBeforeIt: an Oops in one of the prober's
// threads printed while the previous step ended (the step itself passed:
// the prober had read its kernel window) takes the prober down in the
// next step. The hung step names that report and the step it began in.
func TestHungStepQuotesTheReportBeforeIt(t *testing.T) {
	console := []string{
		contract.ConsoleBegin("rmmod"),
		"[   12.690506] BUG: unable to handle page fault for address: ffffffffc0204180",
		"[   12.692816] RIP: 0010:try_module_get+0x17/0xa0",
		"kmodtest: step rmmod: pass (58 ms)",
		contract.ConsoleBegin("socket-gone"),
	}
	run := Input{Events: []contract.Event{begin("rmmod"), end("rmmod", contract.StatusPass), begin("socket-gone")},
		Console: console, Hung: true, HangReason: "no word from the prober for 30s after the kernel reported an error"}
	r := Judge(run, []string{"rmmod", "socket-gone"}, nil)
	s, _ := r.Step("socket-gone")
	reasons := strings.Join(s.Reasons, "\n")
	if !strings.Contains(reasons, "hung during the step") || !strings.Contains(reasons, "during rmmod, before the step: [   12.690506] BUG: unable to handle page fault") {
		t.Errorf("the hung step does not name the report before it:\n%s", reasons)
	}
	if !strings.Contains(strings.Join(s.Evidence, "\n"), "try_module_get") {
		t.Errorf("evidence lacks the report: %q", s.Evidence)
	}
}

// An allocation failure the step injected: the kernel's warning and its
// stack dump (from a 6.12-debug run of insmod-faults).
var allocFailureDump = []string{
	"[  244.877311] uinit: vmalloc error: size 34320, vm_struct allocation failed, mode:0xcc0(GFP_KERNEL), nodemask=(null)",
	"[  244.878497] CPU: 1 UID: 0 PID: 463 Comm: uinit Tainted: G           O       6.12.118-kmodtest-debug #1 ",
	"[  244.878633] Tainted: [O]=OOT_MODULE",
	"[  244.878648] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014",
	"[  244.878788] Call Trace:",
	"[  244.878877]  <TASK>",
	"[  244.879468]  warn_alloc+0x211/0x360",
}

func TestInjectedAllocFailureIsNoReport(t *testing.T) {
	if got := reportsOf(contract.StepInsmodFaults, allocFailureDump); len(got) != 0 {
		t.Errorf("insmod-faults: an injected allocation failure's dump is no report, got %q", got)
	}
	if got := reportsOf(contract.StepReply, allocFailureDump); len(got) != 1 {
		t.Errorf("reply injects nothing: the dump's Call Trace is a report, got %q", got)
	}
	withWarn := append(slices.Clone(allocFailureDump), "[  245.0] WARNING: CPU: 0 PID: 463 at kernel/module/main.c:1 load_module+0x1/0x2")
	if got := reportsOf(contract.StepInsmodFaults, withWarn); len(got) != 1 || !strings.Contains(got[0], "WARNING") {
		t.Errorf("a WARN in a fault-injecting step is still a report, got %q", got)
	}
	console := append([]string{"kmodtest: step insmod-faults: begin"}, allocFailureDump...)
	console = append(console, "kmodtest: step reload: begin")
	console = append(console, allocFailureDump...)
	if got := consoleReports(console); len(got) != 1 || !strings.Contains(got[0], "244.878788") {
		t.Errorf("console: want only the dump printed during reload, got %q", got)
	}
}
