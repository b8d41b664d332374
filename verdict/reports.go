package verdict

import (
	"regexp"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
)

// Kernel reports are recognised by the forms the kernel prints them in,
// not by a word such as "WARNING:" anywhere in a line: on the CPUs people
// have (Intel laptops, the AMD EPYC machines of CI runners) Debian's
// kernels print CPU vulnerability advisories at every boot, and those
// read "RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable…"
// or "Speculative Return Stack Overflow: WARNING: See https://…". An
// advisory is a subsystem's own line, its pr_fmt prefix first; a report
// begins the message with its header.
//
// A message is a console line after its timestamp ("[    1.234567] ",
// and PRINTK_CALLER's "[    T1] "), or a /dev/kmsg line as the prober
// sends it (no timestamp). The console may also carry a kernel line glued
// to the end of the prober's own ("kmodtest: step rmmod: pass (37 ms)[
// 13.4] BUG: …"), so headers are looked for at the message's start and
// right after any timestamp's closing bracket.

// reportHeaders are headers that begin a report's message.
var reportHeaders = []string{
	// WARN(), WARN_ON(): "WARNING: CPU: 1 PID: 123 at file.c:42 func+0x…",
	// and lockdep's and RCU's reports, which all begin with the word
	// ("WARNING: possible circular locking dependency detected").
	`WARNING: `,
	// BUG(), page faults, KASAN, KFENCE, sleeping in atomic context,
	// scheduling while atomic, bad page state, workqueue lockups: "BUG: …";
	// SLUB's object checks: "BUG skbuff_head_cache (Tainted: …): Poison
	// overwritten".
	`BUG: `,
	`BUG \S+ \(.*\): `,
	`kernel BUG at `,
	`Oops: `,
	`Internal error: `, // arm64's oops: "Internal error: Oops: 96000005 [#1] SMP"
	`Unable to handle kernel `,
	`general protection fault`,
	`invalid opcode: `,
	`UBSAN: `,
	`KASAN: `,
	`KFENCE: (out-of-bounds|use-after-free|invalid|memory corruption)`,
	`Kernel panic - not syncing`,
	`------------\[ cut here \]------------`,
	`Call Trace:`,
	`list_(add|del) corruption`,
	`refcount_t: `,
	`INFO: task \S+ blocked for more than`,
	`INFO: rcu_`,
	`rcu: INFO: `,
	`unchecked MSR access error`,
	`unregister_netdevice: waiting`,
	`slab error`,
	`stack-protector: Kernel stack is corrupted`,
}

// reportPhrases are report forms that may follow a subsystem's prefix
// ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s!", "NMI watchdog:
// Watchdog detected hard LOCKUP on cpu 1").
var reportPhrases = []string{
	`\bBUG: soft lockup`,
	`hard LOCKUP`,
	`rcu_\w+ (self-)?detected stall`,
	`sleeping function called from invalid context`,
	`Poison overwritten`,
	`Redzone overwritten`,
	`Object padding overwritten`,
	`double free`,
	`possible recursive locking`,
	`possible circular locking dependency`,
	`inconsistent lock state`,
	`suspicious RCU usage`,
	`\[#\d+\]`, // the oops counter: "Oops: 0000 [#1] PREEMPT SMP NOPTI"
}

// kernelReport matches the lines that are kernel error reports.
var kernelReport = regexp.MustCompile(`(?:^|\]\s*)(?:` + strings.Join(reportHeaders, "|") + `)|` + strings.Join(reportPhrases, "|"))

// KernelReports returns the lines of log that are kernel error reports.
func KernelReports(log []string) []string {
	var out []string
	for _, l := range log {
		if IsKernelReport(l) {
			out = append(out, l)
		}
	}
	return out
}

// allocFailure begins the kernel's warning that an allocation failed
// (warn_alloc): "uinit: vmalloc error: size 34320, vm_struct allocation
// failed, …" or "…: page allocation failure: order:0, …". A stack dump
// follows, whose "Call Trace:" line would read as a report.
var allocFailure = regexp.MustCompile(`: (vmalloc error|page allocation failure): `)

// allocDumpLines is how far after its warning an allocation failure's
// "Call Trace:" line comes (CPU, Tainted, Hardware name, Call Trace).
const allocDumpLines = 6

// stepReports returns the kernel reports of a log. In a step that fails
// allocations on purpose (contract.InjectsFaults), and as such a step
// runs (injecting says which lines), the stack dumps of the kernel's
// allocation-failure warnings are left out: they are the outcome the step
// asks for. Any other report counts.
func stepReports(log []string, injecting func(i int) bool) []string {
	var out []string
	warnAt := -allocDumpLines - 1
	for i, l := range log {
		if injecting(i) && allocFailure.MatchString(l) {
			warnAt = i
			continue
		}
		if !IsKernelReport(l) {
			continue
		}
		if i-warnAt <= allocDumpLines && strings.Contains(l, "Call Trace:") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// reportsOf returns the kernel reports of step's log.
func reportsOf(step string, log []string) []string {
	inj := contract.InjectsFaults(step)
	return stepReports(log, func(int) bool { return inj })
}

// consoleReports returns the kernel reports of a console that runs
// through several steps, each line judged by the step it falls in (the
// last begin line before it).
func consoleReports(console []string) []string {
	inj := make([]bool, len(console))
	cur := false
	for i, l := range console {
		if j := strings.Index(l, "kmodtest: step "); j >= 0 && strings.HasSuffix(l, ": begin") {
			step := strings.TrimSuffix(l[j+len("kmodtest: step "):], ": begin")
			cur = contract.InjectsFaults(step)
		}
		inj[i] = cur
	}
	return stepReports(console, func(i int) bool { return inj[i] })
}

// IsKernelReport reports whether line, a console or kmsg line, is a
// kernel error report.
func IsKernelReport(line string) bool { return kernelReport.MatchString(line) }

// panicLine starts the kernel's last words.
var panicLine = regexp.MustCompile(`Kernel panic - not syncing`)
