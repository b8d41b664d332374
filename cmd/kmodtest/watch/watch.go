// Package watch is kmodtest watch: build the module, run steps on kernels,
// print the verdicts, and do it again on every save of a module source
// file. Every run restores a snapshot of a booted guest whose prober waits
// for its module (harness.Snapshot), so each run starts from a clean
// kernel in a fraction of a second instead of a boot, and is judged by
// the same code as go test (harness.Judge).
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/kbuild"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
)

// Options configure a watch session.
type Options struct {
	// Session holds the targets, steps, cache and accelerator.
	Session *harness.Session
	// Src is the module source; "" means kmod/ of the repository.
	Src string
	Out io.Writer
	// Poll is how often the sources are checked for changes.
	Poll time.Duration
	// Rounds, when above 0, ends the session after that many rounds.
	Rounds int
	// OnRound, when set, is called after each round that ran to its
	// end, and OnStart when a round starts (tests edit the source from
	// there).
	OnRound func(Round)
	OnStart func(n int)
}

// A Round is one build and run of every target.
type Round struct {
	N int
	// Trigger is when the round was asked for: the save's time stamp,
	// or the start of the session.
	Trigger time.Time
	// Total is from Trigger to the printed verdict.
	Total   time.Duration
	Targets []Result
}

// Result is one target's part of a round.
type Result struct {
	Name     string
	BuildErr error
	Warnings []string
	// Build, Wait and StepsDuration split the time: building the
	// module (the guest is restored meanwhile), from then to the
	// prober's first event (rest of the restore, transfer), and the
	// steps to the end.
	Build, Wait, StepsDuration time.Duration
	Report                     *verdict.Report
	Dir                        string
}

// Passed reports whether the target built without warnings and every
// step passed.
func (r Result) Passed() bool {
	if r.BuildErr != nil || len(r.Warnings) > 0 || r.Report == nil {
		return false
	}
	_, failed := r.Report.FirstFailure()
	return !failed
}

// Passed reports whether every target passed.
func (r Round) Passed() bool {
	for _, t := range r.Targets {
		if !t.Passed() {
			return false
		}
	}
	return len(r.Targets) > 0
}

// A target is one kernel, ready to run: fetched, snapshotted, with a
// build directory kept for the session.
type target struct {
	tg       harness.Target
	fetched  *kernels.Fetched
	snap     *harness.Snapshot
	buildDir string
}

// Run watches until ctx ends (Ctrl-C) or Rounds are done. It returns nil
// when ctx ended: stopping is the normal way out.
func Run(ctx context.Context, o Options) error {
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Src == "" {
		o.Src = filepath.Join(o.Session.Repo, "kmod")
	}
	src, err := filepath.Abs(o.Src)
	if err != nil {
		return err
	}
	o.Src = src
	sig, err := signature(o.Src)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kmodtest-watch-")
	if err != nil {
		return fmt.Errorf("create build dirs: %w", err)
	}
	defer os.RemoveAll(tmp)
	prepared := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Fetches, builds and boots stop at once; the Go build of
			// a base image does not, and may take a minute.
			o.Session.Logf("interrupted: stopping as soon as the current step lets go")
		case <-prepared:
		}
	}()
	targets, err := prepare(ctx, o, tmp)
	close(prepared)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	trigger := time.Now()
	for n := 1; ; n++ {
		r, next := runWatchedRound(ctx, o, targets, n, trigger, sig)
		if ctx.Err() != nil {
			return nil
		}
		if next != nil && r.Targets == nil {
			// A save during the round: its verdict would be about
			// source that no longer exists.
			fmt.Fprintf(o.Out, "%s round %d: stopped, the source changed: starting over\n", time.Now().Format("15:04:05"), n)
			trigger, sig = next.at, next.sig
			continue
		}
		printRound(o.Out, o, r)
		if o.OnRound != nil {
			o.OnRound(r)
		}
		if o.Rounds > 0 && n >= o.Rounds {
			return nil
		}
		if next != nil {
			// Saved as the round ended: start the next one at once.
			trigger, sig = next.at, next.sig
			continue
		}
		fmt.Fprintf(o.Out, "watching %s for changes (Ctrl-C to stop)\n", o.Src)
		trigger, sig, err = waitChange(ctx, o.Src, sig, o.Poll)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// A change is a save of the source: when, and the source's new signature.
type change struct {
	at  time.Time
	sig map[string]string
}

// runWatchedRound runs a round while it watches the source. A save
// during the round stops it (its guests are killed): the round comes back
// without targets, and with the change. A save as the round ended comes
// back with the finished round.
func runWatchedRound(ctx context.Context, o Options, targets []*target, n int, trigger time.Time, sig map[string]string) (Round, *change) {
	roundCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan change, 1)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		at, newSig, err := waitChange(roundCtx, o.Src, sig, o.Poll)
		if err == nil {
			changed <- change{at: at, sig: newSig}
			cancel()
		}
	}()
	if o.OnStart != nil {
		o.OnStart(n)
	}
	r := runRound(roundCtx, o, targets, n, trigger)
	stopped := roundCtx.Err() != nil
	cancel()
	<-watching
	select {
	case c := <-changed:
		if stopped {
			return Round{N: n, Trigger: trigger}, &c
		}
		return r, &c
	default:
		return r, nil
	}
}

// prepare fetches every target's kernel and makes its snapshot, in
// parallel.
func prepare(ctx context.Context, o Options, tmp string) ([]*target, error) {
	start := time.Now()
	s := o.Session
	targets := make([]*target, len(s.Targets))
	errs := make([]error, len(s.Targets))
	var wg sync.WaitGroup
	for i, tg := range s.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Profiles of one kernel share its build directory and build.
			t := &target{tg: tg, buildDir: filepath.Join(tmp, tg.Kernel.Name)}
			targets[i] = t
			f := s.Custom
			if f == nil {
				var err error
				if f, err = s.Cache.Fetch(ctx, tg.Kernel); err != nil {
					errs[i] = err
					return
				}
			}
			t.fetched = f
			image, _, err := s.Cache.BootImage(ctx, f)
			if err != nil {
				errs[i] = err
				return
			}
			port, err := kernels.ResultPort(f)
			if err != nil {
				errs[i] = err
				return
			}
			// An arm64 target gets its own prober and, on an amd64
			// host, TCG.
			base, err := s.BaseImageFor(tg.Kernel.Arch)
			if err != nil {
				errs[i] = fmt.Errorf("base initramfs: %w", err)
				return
			}
			t.snap, errs[i] = harness.PrepareSnapshot(ctx, s.Cache, tg, image, port, base.Path, s.AccelFor(tg), s.Logf)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.Logf("ready in %.1fs: %d target(s), %s", time.Since(start).Seconds(), len(targets), s.Accel)
	return targets, nil
}

// A build is one kernel's module build of a round, shared by the
// kernel's boot profiles (5.10 and 5.10-hardened).
type build struct {
	once sync.Once
	mb   *kbuild.ModuleBuild
	err  error
	took time.Duration
}

func (b *build) get(ctx context.Context, o Options, t *target) (*kbuild.ModuleBuild, time.Duration, error) {
	b.once.Do(func() {
		start := time.Now()
		b.mb, b.err = o.Session.Cache.BuildModuleIn(ctx, t.fetched, o.Src, t.buildDir)
		b.took = time.Since(start)
	})
	return b.mb, b.took, b.err
}

// runRound builds and runs every target at once.
func runRound(ctx context.Context, o Options, targets []*target, n int, trigger time.Time) Round {
	r := Round{N: n, Trigger: trigger, Targets: make([]Result, len(targets))}
	builds := map[string]*build{}
	for _, t := range targets {
		if builds[t.buildDir] == nil {
			builds[t.buildDir] = &build{}
		}
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Targets[i] = runTarget(ctx, o, t, builds[t.buildDir])
		}()
	}
	wg.Wait()
	r.Total = time.Since(trigger)
	return r
}

// runTarget restores the target's guest while the module builds, then
// hands the guest the module.
func runTarget(ctx context.Context, o Options, t *target, bld *build) Result {
	s := o.Session
	res := Result{Name: t.tg.Name(), Dir: filepath.Join(s.Artifacts, "watch", t.tg.Name())}
	wr, err := t.snap.Start(ctx, res.Dir, 0)
	if err != nil {
		res.BuildErr = err
		return res
	}
	b, took, err := bld.get(ctx, o, t)
	res.Build = took
	if err != nil {
		wr.Discard()
		res.BuildErr = err
		return res
	}
	res.Warnings = b.Warnings
	out, err := wr.Finish(ctx, b.Ko, contract.Job{Steps: s.Steps, GcovSnapshots: b.GcovDir != ""})
	if err != nil {
		res.BuildErr = err
		return res
	}
	res.Wait, res.StepsDuration, res.Report = wr.Wait, wr.StepsDuration, out.Report
	return res
}

// printRound prints the verdict table, the reasons for failures and the
// timings.
func printRound(w io.Writer, o Options, r Round) {
	fmt.Fprintf(w, "\n%s round %d: ", time.Now().Format("15:04:05"), r.N)
	if r.Passed() {
		fmt.Fprintf(w, "PASS")
	} else {
		fmt.Fprintf(w, "FAIL")
	}
	fmt.Fprintf(w, " in %.2fs from the save\n", r.Total.Seconds())
	steps := append([]string{harness.StepBuild}, o.Session.Steps...)
	steps = append(steps, verdict.LogStep)
	width := 8
	for _, t := range r.Targets {
		width = max(width, len(t.Name)+2)
	}
	fmt.Fprintf(w, "%-*s", width, "target")
	for i := range steps {
		fmt.Fprintf(w, "%3d", i+1)
	}
	fmt.Fprintf(w, "   build   wait  steps (s)\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-*s", width, t.Name)
		marks := marks(t, steps)
		for _, m := range marks {
			fmt.Fprintf(w, "%3s", m)
		}
		fmt.Fprintf(w, "  %6.2f %6.2f %6.2f\n", t.Build.Seconds(), t.Wait.Seconds(), t.StepsDuration.Seconds())
	}
	var legend []string
	for i, s := range steps {
		legend = append(legend, fmt.Sprintf("%d %s", i+1, s))
	}
	fmt.Fprintf(w, "(. pass, F fail, s skip, - not run: %s)\n", strings.Join(legend, ", "))
	for _, t := range r.Targets {
		printFailures(w, o, t)
	}
}

func marks(t Result, steps []string) []string {
	status := map[string]string{}
	switch {
	case t.BuildErr != nil || len(t.Warnings) > 0:
		status[harness.StepBuild] = contract.StatusFail
	default:
		status[harness.StepBuild] = contract.StatusPass
	}
	if t.Report != nil {
		for _, s := range append(t.Report.Steps, t.Report.Log) {
			status[s.Name] = s.Status
		}
	}
	var out []string
	for _, s := range steps {
		m := map[string]string{contract.StatusPass: ".", contract.StatusFail: "F", contract.StatusSkip: "s"}[status[s]]
		if m == "" {
			m = "-"
		}
		out = append(out, m)
	}
	return out
}

func printFailures(w io.Writer, o Options, t Result) {
	if t.BuildErr != nil {
		fmt.Fprintf(w, "\n%s: %v\n", t.Name, t.BuildErr)
		return
	}
	for _, l := range t.Warnings {
		fmt.Fprintf(w, "\n%s: build: compiler warning (go test fails on it): %s\n", t.Name, l)
	}
	if t.Report == nil {
		return
	}
	b := harness.Boot{Dir: t.Dir, Rerun: func(step string) string { return o.Session.RerunLine("TestModule/"+t.Name, step) }}
	for _, s := range append(t.Report.Steps, t.Report.Log) {
		if s.Failed() {
			fmt.Fprintf(w, "\n%s: step %s failed:\n%s\n", t.Name, s.Name, strings.TrimRight(harness.FailureText(s, b, nil), "\n"))
		}
	}
}

// signature is the state of the source files: names, sizes, times.
func signature(src string) (map[string]string, error) {
	files, err := kbuild.SourceFiles(src)
	if err != nil {
		return nil, fmt.Errorf("read module source %s: %w", src, err)
	}
	sig := map[string]string{}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(src, f))
		if err != nil {
			continue // removed while we looked
		}
		sig[f] = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	return sig, nil
}

// waitChange waits until the source changed and stayed unchanged for a
// moment (editors save in several writes), and returns the time of the
// newest change and the new signature.
func waitChange(ctx context.Context, src string, old map[string]string, poll time.Duration) (time.Time, map[string]string, error) {
	const settle = 100 * time.Millisecond
	var changedAt time.Time
	cur := old
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, nil, ctx.Err()
		case <-tick.C:
		}
		sig, err := signature(src)
		if err != nil {
			return time.Time{}, nil, err
		}
		if !equalSig(sig, cur) {
			cur = sig
			if changedAt.IsZero() {
				changedAt = newest(src, sig, old)
			}
			continue
		}
		if !changedAt.IsZero() && time.Since(changedAt) >= settle && !equalSig(cur, old) {
			return changedAt, cur, nil
		}
	}
}

// newest returns the newest modification time among changed files, or
// now when only removals changed the source.
func newest(src string, sig, old map[string]string) time.Time {
	var t time.Time
	var names []string
	for f := range sig {
		if sig[f] != old[f] {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	for _, f := range names {
		if fi, err := os.Stat(filepath.Join(src, f)); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	if t.IsZero() || t.After(time.Now()) {
		return time.Now()
	}
	return t
}

func equalSig(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
