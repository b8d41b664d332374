package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/kernelio"
)

// A leakLedger blames kmemleak's unreferenced objects on the steps that
// allocated them. kmemleak names where an object was allocated, not which
// code forgot it: a socket the module keeps with an extra reference was
// allocated by the sender's socket(2), in net/netlink. So every object
// new since the module's first step is blamed, on the step whose window
// holds the jiffies kmemleak stamped it with; what the kernel leaks on
// its own is kept out by the baseline (see docs/debug-kernel.md).
type leakLedger struct {
	// baseline holds the signatures (size and backtrace) of the objects
	// reported before the first step: the kernel's own leaks, which may
	// recur later from the same code.
	baseline map[string]bool
	// seen holds the objects judged already, by key.
	seen map[string]bool
	// marks are the steps begun so far, in order, with their first jiffy.
	marks []stepMark
	// blames are the reasons to fail steps that ended before the scan
	// that found their leaks; the running step's end event carries them.
	blames []contract.Blame
	// note says why the baseline is missing, if it is.
	note string
	// taken describes the baseline, for the first scan's detail.
	taken string
}

// A stepMark is where a step, or a part of one (label), began.
type stepMark struct {
	step, label string
	start       uint64
}

// kernelLeaks are allocation sites the kernel is known to leak from by
// itself (a frame of the backtrace, and why). Empty so far: the debug
// kernel's runs of the real module showed none past the baseline.
var kernelLeaks = []struct{ frame, why string }{}

// newLeakLedger takes kmemleak's view before the module is loaded: it
// scans once, keeps what is reported as the baseline and clears it, so
// that it is not reported again. It returns nil where kmemleak is off.
func newLeakLedger() *leakLedger {
	if !kernelio.KmemleakOn() {
		return nil
	}
	l := &leakLedger{baseline: map[string]bool{}, seen: map[string]bool{}}
	start := time.Now()
	objs, err := kernelio.KmemleakObjects(context.Background(), false, 1)
	if err != nil {
		l.note = "kmemleak baseline: " + err.Error()
		return l
	}
	for _, o := range objs {
		l.baseline[o.Signature()] = true
		l.seen[o.Key()] = true
	}
	if err := kernelio.KmemleakClear(); err != nil {
		l.note = "kmemleak baseline: " + err.Error()
	}
	l.taken = fmt.Sprintf("baseline before the first step: %d object(s), %d ms", len(objs), time.Since(start).Milliseconds())
	return l
}

// begin notes that step starts now. A ledger that cannot read the time
// blames nothing after it on a step, which the scan's detail says.
func (l *leakLedger) begin(step string) {
	if l == nil {
		return
	}
	l.add(stepMark{step: step, label: step})
}

// mark notes that a part of the running step starts now (one injection
// of a sweep), so that a leak names it.
func (l *leakLedger) mark(label string) {
	if l == nil || len(l.marks) == 0 {
		return
	}
	l.add(stepMark{step: l.marks[len(l.marks)-1].step, label: label})
}

func (l *leakLedger) add(m stepMark) {
	j, err := kernelio.Jiffies()
	if err != nil {
		l.note = err.Error()
		return
	}
	m.start = j
	l.marks = append(l.marks, m)
}

// at returns the mark that was running at jiffy j: the last one begun
// at or before it, the zero mark before the first step.
func (l *leakLedger) at(j uint64) stepMark {
	var cur stepMark
	for _, m := range l.marks {
		if m.start > j {
			break
		}
		cur = m
	}
	return cur
}

// labelled prefixes an object's record with the part of a step that
// allocated it, where the step has parts.
func labelled(o kernelio.LeakObject, m stepMark) string {
	if m.label == "" || m.label == m.step {
		return o.Record
	}
	return "allocated during " + m.label + ":\n" + o.Record
}

// A leakJudgement sorts the objects of one scan.
type leakJudgement struct {
	// module holds the records of objects whose backtrace runs through
	// the module, allocated during the scanning step (or at no known
	// step): the scanning step fails on them.
	module []string
	// moduleByStep holds the module's other objects, by the step that
	// allocated them; moduleSteps lists those steps in order.
	moduleByStep map[string][]string
	moduleSteps  []string
	// byStep holds the other new objects' records, by the step that
	// allocated them, in the order of the steps.
	byStep map[string][]string
	steps  []string
	// kernel counts the objects left out as the kernel's own: allocated
	// before the first step, or from the baseline's or kernelLeaks' code.
	kernel int
}

// judge sorts the objects of a scan made during step current. Each
// object is judged once, in the first scan that reports it.
func (l *leakLedger) judge(objs []kernelio.LeakObject, module, current string) leakJudgement {
	j := leakJudgement{byStep: map[string][]string{}, moduleByStep: map[string][]string{}}
	for _, o := range objs {
		if l.seen[o.Key()] {
			continue
		}
		l.seen[o.Key()] = true
		m := l.at(o.Jiffies)
		if o.FromModule(module) {
			if m.step == "" || m.step == current {
				j.module = append(j.module, labelled(o, m))
				continue
			}
			if _, ok := j.moduleByStep[m.step]; !ok {
				j.moduleSteps = append(j.moduleSteps, m.step)
			}
			j.moduleByStep[m.step] = append(j.moduleByStep[m.step], labelled(o, m))
			continue
		}
		step := m.step
		if step == "" || l.baseline[o.Signature()] || knownKernelLeak(o) {
			j.kernel++
			continue
		}
		if _, ok := j.byStep[step]; !ok {
			j.steps = append(j.steps, step)
		}
		j.byStep[step] = append(j.byStep[step], labelled(o, m))
	}
	return j
}

func knownKernelLeak(o kernelio.LeakObject) bool {
	for _, k := range kernelLeaks {
		for _, f := range o.Backtrace {
			if strings.HasPrefix(f, k.frame+"+") {
				return true
			}
		}
	}
	return false
}

// strandedError describes objects a step allocated and nobody freed,
// quoting the first record whole.
func strandedError(records []string, scanStep string) error {
	first := strings.Split(records[0], "\n")
	if len(first) > 24 {
		first = append(first[:24], "...")
	}
	return fmt.Errorf("kmemleak: %d unreferenced object(s) allocated during this step and never freed, not by the module's code "+
		"(kmemleak names where an object was allocated, not what lost it: the module may hold a reference it never drops); "+
		"found by the scan after %s; the first:\n%s", len(records), scanStep, strings.Join(first, "\n"))
}

// leakVerdict runs kmemleak after a step and fails the step on a leak of
// the module's or on an object this step allocated and nobody freed;
// objects earlier steps allocated are blamed on those steps.
func (p *prober) leakVerdict(step, status, detail string) (string, string) {
	return p.leaks.verdict(step, p.cfg.ModuleName, status, detail)
}

// verdict scans kmemleak after step for leakVerdict and for the project
// mode: module is the module whose code an object's backtrace names.
func (l *leakLedger) verdict(step, module, status, detail string) (string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	objs, err := kernelio.KmemleakObjects(ctx, true, 2)
	if err != nil {
		return contract.StatusFail, join(detail, err.Error())
	}
	j := l.judge(objs, module, step)
	var notes []string
	if len(j.module) > 0 {
		status, detail = contract.StatusFail, join(detail, kernelio.LeakError(j.module).Error())
	}
	for _, s := range j.moduleSteps {
		reason := fmt.Sprintf("%v\n(found by the scan after %s)", kernelio.LeakError(j.moduleByStep[s]), step)
		l.blames = append(l.blames, contract.Blame{Step: s, Reason: reason})
		notes = append(notes, fmt.Sprintf("%d object(s) of the module's allocated during %s blamed on it", len(j.moduleByStep[s]), s))
	}
	for _, s := range j.steps {
		err := strandedError(j.byStep[s], step)
		if s == step {
			status, detail = contract.StatusFail, join(detail, err.Error())
			continue
		}
		l.blames = append(l.blames, contract.Blame{Step: s, Reason: err.Error()})
		notes = append(notes, fmt.Sprintf("%d object(s) allocated during %s blamed on it", len(j.byStep[s]), s))
	}
	if j.kernel > 0 {
		notes = append(notes, fmt.Sprintf("%d object(s) of the kernel's own left out", j.kernel))
	}
	if l.note != "" {
		notes = append(notes, l.note)
	}
	if l.taken != "" {
		notes = append(notes, l.taken)
		l.taken = ""
	}
	if len(j.module) == 0 && len(j.moduleByStep) == 0 && len(j.byStep) == 0 {
		notes = append([]string{"no leak of the module"}, notes...)
	}
	notes = append(notes, fmt.Sprintf("scan %d ms", time.Since(start).Milliseconds()))
	return status, join(detail, "kmemleak: "+strings.Join(notes, "; "))
}
