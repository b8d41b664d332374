package verdict

import (
	"regexp"
	"strings"
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

// IsKernelReport reports whether line, a console or kmsg line, is a
// kernel error report.
func IsKernelReport(line string) bool { return kernelReport.MatchString(line) }

// panicLine starts the kernel's last words.
var panicLine = regexp.MustCompile(`Kernel panic - not syncing`)
