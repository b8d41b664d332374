// Package verdict turns one VM run (the prober's events and the console
// log) into a pass or a failure with reasons for every step, and for the
// kernel log as a whole.
//
// A step fails when the prober says so, when the kernel printed a report
// (Oops, BUG, WARNING, KFENCE, UBSAN, …) while it ran, when it added a
// taint flag other than out-of-tree or unsigned, when the guest panicked or
// hung during it, or when it never ran at all.
package verdict

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
)

// Step is the verdict on one step.
type Step struct {
	Name   string
	Status string // contract.StatusPass, StatusFail or StatusSkip
	// Reasons say why a step failed, one finding each.
	Reasons []string
	// Evidence holds the kernel lines that back the reasons.
	Evidence []string
	// Kmsg is everything the kernel printed during the step.
	Kmsg       []string
	DurationMS int64
	// RoundTrips is what the round-trip step measured, if it got that far.
	RoundTrips *contract.RoundTrips
}

// Failed reports whether the step failed.
func (s Step) Failed() bool { return s.Status == contract.StatusFail }

// Report is the verdict on a whole run.
type Report struct {
	Kernel string // uname -r as seen by the guest
	Steps  []Step
	// Log is the verdict on the console log as a whole: reports printed
	// outside any step (during boot or shutdown) land here too.
	Log Step
	// Panic holds the panic lines when the guest panicked.
	Panic []string
	// Boot is the verdict on the boot itself. It fails when the guest
	// sent no event at all (QEMU would not start, the kernel died
	// early): then there is one failure for the whole boot and Steps is
	// empty, rather than the same reason once per step.
	Boot Step
}

// Step returns the verdict on the named step.
func (r *Report) Step(name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// FirstFailure returns the first failing step, if any.
func (r *Report) FirstFailure() (Step, bool) {
	if r.Boot.Failed() {
		return r.Boot, true
	}
	for _, s := range r.Steps {
		if s.Failed() {
			return s, true
		}
	}
	if r.Log.Failed() {
		return r.Log, true
	}
	return Step{}, false
}

// Input is the part of a VM run the verdict needs.
type Input struct {
	Events     []contract.Event
	Console    []string
	Hung       bool
	HangReason string
	// Exit describes an unclean QEMU exit, or is empty.
	Exit string
}

// LogStep is the name of the whole-log verdict.
const LogStep = "kernel-log"

// BootStep is the name of the verdict on the boot itself.
const BootStep = "boot"

// Judge gives the verdict on run, for the steps that were asked for.
// expect maps a step to a line its kernel log window must hold (the
// module's own load and unload messages, say); nil expects nothing.
func Judge(run Input, steps []string, expect map[string]string) *Report {
	r := &Report{}
	ends := map[string]contract.Event{}
	begun := map[string]bool{}
	blamed := map[string][]string{} // reasons later steps found (contract.Blame)
	var lastBegun string
	for _, e := range run.Events {
		for _, b := range e.Blame {
			blamed[b.Step] = append(blamed[b.Step], b.Reason)
		}
		switch e.Kind {
		case contract.KindBegin:
			begun[e.Step] = true
			lastBegun = e.Step
			if e.Kernel != "" {
				r.Kernel = e.Kernel
			}
		case contract.KindEnd:
			ends[e.Step] = e
		case contract.KindDone:
			if e.Kernel != "" {
				r.Kernel = e.Kernel
			}
		}
	}
	r.Panic = panicExcerpt(run.Console)
	boot, rest := splitBoot(run.Console, steps, begun)
	r.Log = judgeLog(rest)
	r.Boot = judgeBoot(boot)
	if len(run.Events) == 0 {
		r.Boot.Status = contract.StatusFail
		r.Boot.Reasons = []string{"the guest never started the prober: " + guestEnd(run, r)}
		r.Boot.Evidence = r.Panic
		if r.Boot.Evidence == nil {
			r.Boot.Evidence = tail(run.Console, 20)
		}
		return r
	}

	prev, prev2 := "", "" // the steps that ran before this one
	for _, name := range steps {
		s := Step{Name: name}
		e, ended := ends[name]
		switch {
		case ended:
			s.Status = e.Status
			s.Kmsg = e.Kmsg
			s.DurationMS = e.DurationMS
			s.RoundTrips = e.RoundTrips
			if e.Status == contract.StatusFail {
				s.Reasons = append(s.Reasons, e.Detail)
				if name == contract.StepInsmod && len(e.Kmsg) > 0 {
					// The kernel says why it refused the module
					// (".gnu.linkonce.this_module section size must
					// match…"); the errno alone does not.
					s.Reasons[len(s.Reasons)-1] += "; the kernel said: " + strings.Join(e.Kmsg[:min(3, len(e.Kmsg))], " | ")
					s.Evidence = append(s.Evidence, e.Kmsg[:min(maxEvidence, len(e.Kmsg))]...)
				}
			} else if e.Status == contract.StatusSkip && e.Detail != "" {
				s.Reasons = append(s.Reasons, "skipped: "+e.Detail)
			}
			if reports := reportsOf(name, e.Kmsg); len(reports) > 0 {
				// The prober's window is capped, and a flood of
				// kernel lines (slub_debug's object dumps) can
				// overwrite a report's first lines in the ring
				// buffer before it reads them: the console keeps
				// every line, so quote the step's report from there.
				lines := e.Kmsg
				if w := stepConsole(run.Console, name, prev); len(reportsOf(name, w)) > 0 {
					lines, reports = w, reportsOf(name, w)
				}
				s.Status = contract.StatusFail
				s.Reasons = append(s.Reasons, fmt.Sprintf("the kernel reported an error during the step: %s", reports[0]))
				s.Evidence = append(s.Evidence, excerpt(lines, reports)...)
			}
			if want, ok := expect[name]; ok && e.Status == contract.StatusPass && !slices.Contains(e.Kmsg, want) {
				s.Status = contract.StatusFail
				s.Reasons = append(s.Reasons, fmt.Sprintf("the kernel log of the step lacks %q", want))
				s.Evidence = append(s.Evidence, e.Kmsg...)
			}
			if added := contract.NewTaint(e.TaintBefore, e.TaintAfter); added != 0 {
				s.Status = contract.StatusFail
				s.Reasons = append(s.Reasons, fmt.Sprintf("the step tainted the kernel: new taint %s (was %s, now %s)",
					contract.DescribeTaint(added), contract.TaintLetters(e.TaintBefore), contract.TaintLetters(e.TaintAfter)))
			}

		case begun[name] && name == lastBegun && r.Panic != nil:
			s.Status = contract.StatusFail
			s.Reasons = append(s.Reasons, "the kernel panicked during the step: "+r.Panic[0])
			s.Evidence = r.Panic
		case begun[name] && name == lastBegun && run.Hung:
			s.Status = contract.StatusFail
			s.Reasons = append(s.Reasons, "the guest hung during the step ("+run.HangReason+")")
			s.Evidence = tail(run.Console, 20)
		case begun[name]:
			s.Status = contract.StatusFail
			s.Reasons = append(s.Reasons, "the step began but never ended: "+guestEnd(run, r))
			s.Evidence = tail(run.Console, 20)
		default:
			s.Status = contract.StatusFail
			s.Reasons = append(s.Reasons, "the step never ran: "+guestEnd(run, r))
		}
		if len(blamed[name]) > 0 {
			s.Status = contract.StatusFail
			s.Reasons = append(s.Reasons, blamed[name]...)
		}
		if !ended && begun[name] {
			// The kernel's words, if any, are on the console only.
			if reports := KernelReports(sinceMarker(run.Console, name, prev)); len(reports) > 0 {
				s.Reasons = append(s.Reasons, "the kernel reported an error during the step: "+reports[0])
				s.Evidence = append(excerpt(run.Console, reports), s.Evidence...)
			}
			if reports := KernelReports(sinceMarker(run.Console, prev, prev2)); prev != "" && len(reports) > 0 && name == lastBegun {
				// A report printed as the previous step ended (an Oops
				// in one of the prober's threads) can take the prober
				// down in this one: name it, and where it began. The
				// console may also show an Oops of this step's before
				// the prober's begin line (two writers, out of order):
				// its first lines land in the previous step's window,
				// its Call Trace in this one's.
				s.Reasons = append(s.Reasons, fmt.Sprintf("the kernel reported an error during %s, before the step: %s", prev, reports[0]))
				s.Evidence = append(excerpt(run.Console, reports), s.Evidence...)
			}
		}
		r.Steps = append(r.Steps, s)
		if begun[name] {
			prev, prev2 = name, prev
		}
	}
	return r
}

// judgeLog gives the verdict on the console log from the first step on.
func judgeLog(console []string) Step {
	s := Step{Name: LogStep, Status: contract.StatusPass}
	if reports := consoleReports(console); len(reports) > 0 {
		s.Status = contract.StatusFail
		s.Reasons = append(s.Reasons, fmt.Sprintf("the console log holds %d kernel error line(s), the first: %s", len(reports), reports[0]))
		s.Evidence = excerpt(console, reports)
	}
	return s
}

// judgeBoot gives the verdict on what the kernel printed before the
// module's first step: a report there is the kernel's or the machine's
// (a WARN from a boot option, a CPU model the kernel trips over), so it
// fails the boot, once, and no step.
func judgeBoot(boot []string) Step {
	return judgeConsole(BootStep, boot, "the kernel reported an error before the module was loaded (%d line(s)), the first: %s")
}

// judgeConsole fails the verdict name when console holds kernel reports;
// reason formats their number and the first.
func judgeConsole(name string, console []string, reason string) Step {
	s := Step{Name: name, Status: contract.StatusPass}
	if reports := KernelReports(console); len(reports) > 0 {
		s.Status = contract.StatusFail
		s.Reasons = append(s.Reasons, fmt.Sprintf(reason, len(reports), reports[0]))
		s.Evidence = excerpt(console, reports)
	}
	return s
}

// splitBoot splits the console where the first step that began starts
// (its kmsg marker or the prober's begin line): what comes before is the
// boot. A console without such a line (no step began, or the markers are
// missing) is all boot when no step began, and all steps otherwise, so a
// report is never lost.
func splitBoot(console, steps []string, begun map[string]bool) (boot, rest []string) {
	for _, name := range steps {
		if !begun[name] {
			continue
		}
		if i := firstStepStart(console, name); i >= 0 {
			return console[:i], console[i:]
		}
		return nil, console
	}
	return console, nil
}

// firstStepStart returns the index of the first console line where step
// began, or -1.
func firstStepStart(console []string, step string) int {
	for i, l := range console {
		if strings.HasSuffix(l, contract.KmsgMarker+step) || strings.HasSuffix(l, contract.ConsoleBegin(step)) {
			return i
		}
	}
	return -1
}

// guestEnd says how the guest stopped short.
func guestEnd(run Input, r *Report) string {
	switch {
	case r.Panic != nil:
		return "the kernel panicked: " + r.Panic[0]
	case run.Hung:
		return "the guest hung (" + run.HangReason + ")"
	case run.Exit != "":
		return "QEMU exited early (" + run.Exit + ")"
	default:
		return "the prober stopped before it"
	}
}

// maxEvidence bounds how many lines a verdict quotes; the full log is
// kept in the artifacts.
const maxEvidence = 40

// excerpt returns up to maxEvidence lines of log starting a little before
// the first report.
func excerpt(log []string, reports []string) []string {
	for i, l := range log {
		if l == reports[0] {
			start := max(0, i-3)
			end := min(len(log), start+maxEvidence)
			return log[start:end]
		}
	}
	return nil
}

// sinceMarker returns the console from where step began on, or all of it
// when that cannot be found. Reports printed before the step (an RCU
// stall while a loaded host booted the guest) are then not quoted as the
// step's. The kmsg marker is best (ordered with the kernel's lines) but
// reaches the console only when its log level lets it; the previous
// step's end line comes next, since the prober prints it before the step
// starts; the prober's begin line last, since a report the step caused
// may reach the console before it.
func sinceMarker(console []string, step, prev string) []string {
	if i := stepStart(console, step, prev); i >= 0 {
		return console[i:]
	}
	return console
}

// stepStart returns the index of the console line where step began, or -1.
func stepStart(console []string, step, prev string) int {
	match := []func(string) bool{
		func(l string) bool { return strings.HasSuffix(l, contract.KmsgMarker+step) },
		func(l string) bool {
			return prev != "" && strings.Contains(l, "kmodtest: step "+prev+": ") && !strings.HasSuffix(l, contract.ConsoleBegin(prev))
		},
		func(l string) bool { return strings.HasSuffix(l, contract.ConsoleBegin(step)) },
	}
	for _, m := range match {
		for i := len(console) - 1; i >= 0; i-- {
			if m(console[i]) {
				return i
			}
		}
	}
	return -1
}

// stepConsole returns step's console window, from where it began to the
// line the prober printed when it ended, or nil when either is missing.
func stepConsole(console []string, step, prev string) []string {
	i := stepStart(console, step, prev)
	if i < 0 {
		return nil
	}
	for j := i + 1; j < len(console); j++ {
		if strings.Contains(console[j], "kmodtest: step "+step+": ") && !strings.HasSuffix(console[j], contract.ConsoleBegin(step)) {
			return console[i : j+1]
		}
	}
	return nil
}

func tail(log []string, n int) []string {
	return log[max(0, len(log)-n):]
}

func panicExcerpt(console []string) []string {
	for i, l := range console {
		if panicLine.MatchString(l) {
			start := max(0, i-maxEvidence+5)
			return append([]string{l}, console[start:min(len(console), i+5)]...)
		}
	}
	return nil
}
