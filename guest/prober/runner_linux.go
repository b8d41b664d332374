package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/kernelio"
)

// A step is how the prober runs one named check; what the host knows of
// it too (its timeout, whether it needs the module) is in the contract's
// step table. A step's context expires at its timeout; a step that
// ignores it is abandoned contract.StepGrace later and reported failed.
type step struct {
	// quiet lowers the console log level while the step runs, so that a
	// module that logs every greeting does not make a flood of greetings
	// crawl at serial speed. Records still reach /dev/kmsg.
	quiet bool
	// leakScan marks the steps after which kmemleak, where the kernel
	// has it, may scan (see planLeakScan).
	leakScan bool
	// unloads marks the steps that unload the module.
	unloads bool
	// run returns nil to pass (info, if set, is reported as the detail),
	// a skipError to skip, or an error to fail.
	run func(ctx context.Context, p *prober) (info string, err error)
}

// A skipError skips a step with a reason.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skip: " + e.reason }

func skipf(format string, args ...any) error {
	return &skipError{reason: fmt.Sprintf(format, args...)}
}

// steps maps the contract's step names to their implementations.
var steps = map[string]step{
	contract.StepInsmod:            {run: stepInsmod},
	contract.StepReply:             {run: stepReply},
	contract.StepAck:               {run: stepAck},
	contract.StepNoReplyWithoutAck: {run: stepNoReplyWithoutAck},
	contract.StepOriginalClient:    {run: stepOriginalClient},
	contract.StepRmmod:             {run: stepRmmod, unloads: true},
	contract.StepSocketGone:        {run: stepSocketGone},

	contract.StepGreetingLog:      {run: stepGreetingLog},
	contract.StepDebugLog:         {run: stepDebugLog},
	contract.StepShortDatagrams:   {run: stepShortDatagrams},
	contract.StepBadLength:        {run: stepBadLength},
	contract.StepEmptyGreeting:    {run: stepEmptyGreeting},
	contract.StepTextLimits:       {run: stepTextLimits},
	contract.StepHugePayload:      {run: stepHugePayload},
	contract.StepNoNUL:            {run: stepNoNUL},
	contract.StepHighBytes:        {run: stepHighBytes},
	contract.StepControlTypes:     {run: stepControlTypes},
	contract.StepUnknownType:      {run: stepUnknownType},
	contract.StepBatch:            {run: stepBatch},
	contract.StepSpoofedPid:       {run: stepSpoofedPid},
	contract.StepRoundTrip:        {run: stepRoundTrip, quiet: true},
	contract.StepUnprivileged:     {run: stepUnprivileged},
	contract.StepNetns:            {run: stepNetns},
	contract.StepNetnsDeleted:     {run: stepNetnsDeleted},
	contract.StepUnprivNetns:      {run: stepUnprivilegedNetns},
	contract.StepUsernsNetns:      {run: stepUsernsNetns},
	contract.StepJoinedNetns:      {run: stepJoinedNetns},
	contract.StepNetnsFreed:       {run: stepNetnsFreed},
	contract.StepConcurrentSocket: {run: stepConcurrentSockets, quiet: true},
	contract.StepSharedSocket:     {run: stepSharedSocket, quiet: true},
	contract.StepNeverReads:       {run: stepNeverReads, quiet: true},
	contract.StepLeak:             {run: stepLeak, quiet: true, leakScan: true},
	contract.StepAllocFailures:    {run: stepAllocFailures, quiet: true, leakScan: true},
	contract.StepNetnsFaults:      {run: stepNetnsFaults, quiet: true, leakScan: true},
	contract.StepInsmodFaults:     {run: stepInsmodFaults, quiet: true, leakScan: true, unloads: true},
	contract.StepRmmodBusy:        {run: stepRmmodBusy},
	contract.StepReload:           {run: stepReload, leakScan: true, unloads: true},
	contract.StepModuleParam:      {run: stepModuleParam},
	contract.StepCoverage:         {run: stepCoverage},
}

// A prober holds what steps share.
type prober struct {
	cfg contract.Config
	// cfgErr fails every step if the configuration could not be read.
	cfgErr error
	// insmodErr says why the module is not loaded, once insmod failed.
	insmodErr error
	// files is what the running step hands to the host (contract.Event.Files).
	files map[string][]byte
	// roundTrips is what the round-trip step measured (contract.Event.RoundTrips).
	roundTrips *contract.RoundTrips
	// gcov counts the per-step gcov snapshots sent so far (Config.GcovSnapshots).
	gcov gcovCost
	// leaks blames kmemleak's reports on steps; nil without kmemleak.
	leaks *leakLedger
	// leakScans are the steps after which kmemleak scans (planLeakScan).
	leakScans map[string]bool
	// rep is where progress lines go (nil in tests); lastProgress
	// limits them to one per progressEvery.
	rep          *reporter
	lastProgress time.Time
}

// progressEvery spaces the progress lines of a long sweep: well under
// the host's silence limit after a kernel line it takes for a report
// (an injected allocation failure's stack dump).
const progressEvery = 5 * time.Second

// progress tells the host that a long step still moves.
func (p *prober) progress(format string, args ...any) {
	if p.rep == nil || time.Since(p.lastProgress) < progressEvery {
		return
	}
	p.lastProgress = time.Now()
	p.rep.progress(fmt.Sprintf(format, args...))
}

// planLeakScan picks the steps after which kmemleak scans: the last of
// names marked leakScan before the module is first unloaded, and the
// last of all. Each scan costs seconds on the debug kernel (a minimum
// age of 5 s, then two scans), and the ledger blames each object on the
// step that allocated it whichever scan finds it. The first scan runs
// while the instance that allocated is still loaded, so that kmemleak's
// backtraces name the module's functions; after an unload they are bare
// addresses. A run of only the core steps scans nowhere.
func (p *prober) planLeakScan(names []string) {
	p.leakScans = map[string]bool{}
	loaded, last := "", ""
	unloaded := false
	for _, name := range names {
		s, ok := steps[name]
		if !ok {
			continue
		}
		if s.leakScan {
			last = name
			if !unloaded {
				loaded = name
			}
		}
		unloaded = unloaded || s.unloads
	}
	for _, name := range []string{loaded, last} {
		if name != "" {
			p.leakScans[name] = true
		}
	}
}

func newProber(cfg contract.Config, cfgErr error) *prober {
	answerTimeout = baseAnswerTimeout * time.Duration(max(cfg.Slowdown, 1))
	return &prober{cfg: cfg, cfgErr: cfgErr}
}

// runStep runs one step between its begin and end events and returns
// its status.
func (p *prober) runStep(rep *reporter, name string, first bool) string {
	var kernel string
	if first {
		kernel = kernelRelease()
	}
	taintBefore, taintErr := kernelio.ReadTaint()
	rep.begin(name, kernel, taintBefore)
	p.leaks.begin(name)

	var notes []string
	if taintErr != nil {
		notes = append(notes, taintErr.Error())
	}
	cursor, err := kernelio.MarkKmsg(contract.KmsgMarker + name)
	if err != nil {
		notes = append(notes, err.Error())
	}

	s, ok := steps[name]
	start := time.Now()
	var status, detail string
	switch {
	case !ok:
		status, detail = contract.StatusSkip, fmt.Sprintf("unknown step %q", name)
	case p.cfgErr != nil:
		status, detail = contract.StatusFail, p.cfgErr.Error()
	case p.insmodErr != nil && contract.NeedsModule(name):
		// One failure for one cause: the insmod step has the kernel's
		// words; the steps that need the module say why they did not run.
		status, detail = contract.StatusSkip, "the module is not loaded: insmod failed (see the insmod step)"
	default:
		var restore func()
		if s.quiet {
			restore = quietConsole()
		}
		scan := p.leaks != nil && p.leakScans[name]
		status, detail = execute(p, name, s)
		if scan {
			status, detail = p.leakVerdict(name, status, detail)
		}
		if restore != nil {
			restore()
		}
	}
	d := time.Since(start)

	var kmsg []string
	if cursor != nil {
		var kerr error
		kmsg, kerr = cursor.Drain()
		if kerr != nil {
			notes = append(notes, kerr.Error())
		}
	}
	taintAfter, err := kernelio.ReadTaint()
	if err != nil {
		notes = append(notes, err.Error())
	}
	if p.cfg.GcovSnapshots && p.files == nil {
		// After the step's duration was taken: the snapshot is not the step's work.
		if p.files, err = p.gcovSnapshot(); err != nil {
			notes = append(notes, err.Error())
		}
	}
	// Taints gained are judged on the host (verdict), from TaintBefore
	// and TaintAfter, with the contract's one table: one new taint, one reason.
	if len(notes) > 0 {
		if detail != "" {
			detail += "; "
		}
		detail += strings.Join(notes, "; ")
	}
	var blames []contract.Blame
	if p.leaks != nil {
		blames, p.leaks.blames = p.leaks.blames, nil
	}
	rep.end(contract.Event{
		Step:        name,
		Status:      status,
		Detail:      detail,
		Kmsg:        kmsg,
		TaintBefore: taintBefore,
		TaintAfter:  taintAfter,
		DurationMS:  d.Milliseconds(),
		Files:       p.files,
		RoundTrips:  p.roundTrips,
		Blame:       blames,
	})
	p.files, p.roundTrips = nil, nil
	return status
}

// join appends b to a, separated by "; ".
func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// execute runs s with its timeout, turning a panic into a failure.
func execute(p *prober, name string, s step) (status, detail string) {
	return executeFor(contract.StepTimeout(name, p.cfg.Slowdown), func(ctx context.Context) (string, error) {
		return s.run(ctx, p)
	})
}

// executeFor runs fn with timeout, abandoning it contract.StepGrace
// later (it may still hold sockets then), and turns a panic into a
// failure.
func executeFor(timeout time.Duration, fn func(context.Context) (string, error)) (status, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errc := make(chan error, 1)
	var info string
	goSafe(errc, func() error {
		var err error
		info, err = fn(ctx)
		return err
	})
	var err error
	select {
	case err = <-errc:
	case <-time.After(timeout + contract.StepGrace):
		return contract.StatusFail, fmt.Sprintf("step did not finish within %s (abandoned; it may still hold sockets)", timeout)
	}
	var skip *skipError
	switch {
	case errors.As(err, &skip):
		return contract.StatusSkip, skip.reason
	case err != nil && ctx.Err() != nil:
		return contract.StatusFail, fmt.Sprintf("%v (step timeout %s reached)", err, timeout)
	case err != nil:
		return contract.StatusFail, err.Error()
	}
	return contract.StatusPass, info
}

// stackExcerpt returns the first lines of the current goroutine's stack.
func stackExcerpt() string {
	lines := strings.Split(string(debug.Stack()), "\n")
	if len(lines) > 40 {
		lines = append(lines[:40], "...")
	}
	return strings.Join(lines, "\n")
}

// quietConsole lets only warnings and worse reach the console and returns
// a function that restores the previous level.
func quietConsole() func() {
	const path = "/proc/sys/kernel/printk"
	old, err := os.ReadFile(path)
	if err != nil {
		return func() {}
	}
	fields := strings.Fields(string(old))
	if len(fields) == 0 {
		return func() {}
	}
	if err := os.WriteFile(path, []byte("5\n"), 0); err != nil {
		return func() {}
	}
	return func() { _ = os.WriteFile(path, []byte(fields[0]+"\n"), 0) }
}

// goSafe runs fn in a goroutine and sends its error, or its panic as an
// error, to errc.
func goSafe(errc chan<- error, fn func() error) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("panic: %v\n%s", r, stackExcerpt())
			}
		}()
		errc <- fn()
	}()
}
