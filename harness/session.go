package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/userpath"
	"github.com/kmodtest/kmodtest/kbuild"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// A Session is one run of the VM tests: the options, the targets they
// select, the cache, the shared base initramfs and the per-kernel
// preparations, and the report rows. Its methods are safe for concurrent
// use by the tests of one process.
type Session struct {
	Options Options
	// Repo is the repository root (go.mod, kmod/).
	Repo  string
	Cache *kernels.Cache
	// Targets are the kernels x boot profiles selected.
	Targets []Target
	// Custom is the user's own kernel (-kernel, -kdir), or nil.
	Custom *kernels.Fetched
	// Steps are the probe steps each boot runs.
	Steps []string
	Accel vm.Accel
	// CPU is the -guest-cpu option as the targets' QEMUs offer it: BootTarget
	// applies it to every target, the fixtures' too.
	CPU CPUChoice
	// Artifacts is this run's artifacts directory.
	Artifacts string
	// Logf receives progress lines.
	Logf func(format string, args ...any)

	baseMu sync.Mutex
	bases  map[arch.Arch]*baseBuild

	prepMu sync.Mutex
	preps  map[string]*Prep

	report Report

	savedMu sync.Mutex
	saved   map[string]*savedGuest

	// ctx is the run's context, from NewSession: when it is done (Ctrl-C,
	// SIGTERM), every preparation and boot stops, whatever context its
	// caller gave.
	ctx context.Context
}

// NewSession checks o and sets up a run of it from the repository at
// repo. Bad options fail here, before anything is fetched or built.
// ctx is the run's: cancelling it (a signal context, say) stops every
// preparation and boot of the session. logf receives progress lines.
func NewSession(ctx context.Context, o Options, repo string, logf func(format string, args ...any)) (*Session, error) {
	started := time.Now()
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	selected, custom, err := o.selection(logf)
	if err != nil {
		return nil, err
	}
	repo, err = filepath.Abs(repo)
	if err != nil {
		return nil, fmt.Errorf("repository directory: %w", err)
	}
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	s := &Session{
		Options: o,
		Repo:    repo,
		Cache:   &kernels.Cache{Dir: dir, Logf: logf, Update: o.Update},
		Custom:  custom,
		Logf:    logf,
		preps:   map[string]*Prep{},
		ctx:     ctx,
		bases:   map[arch.Arch]*baseBuild{},
		saved:   map[string]*savedGuest{},
	}
	var preflight []kernels.Kernel // nil for the user's own kernel
	if custom == nil {
		var notes []string
		selected, notes, err = SelectBuilt(ctx, s.Cache, selected, o.KernelNames(), o.DebugKernel)
		if err != nil {
			return nil, err
		}
		for _, n := range notes {
			logf("%s", n)
		}
		preflight = selected
	}
	if s.Targets, err = Targets(selected); err != nil {
		return nil, err
	}
	// Before any long work: one message naming what this host lacks.
	if err := kernels.NewPreflight(qemuBinaries(selected)...).Run(ctx, s.Cache, preflight); err != nil {
		return nil, err
	}
	if s.CPU, err = ChooseCPU(ctx, s.Targets, o.CPU, logf); err != nil {
		return nil, err
	}
	for i := range s.Targets {
		s.Targets[i] = s.CPU.Apply(s.Targets[i])
	}

	root := o.ArtifactsDir
	if root == "" {
		root = filepath.Join(repo, "artifacts")
	}
	if s.Artifacts, err = NewRunDir(root, time.Now(), logf); err != nil {
		return nil, err
	}
	logf("artifacts: %s (%s links to the newest run)", s.Artifacts, filepath.Join(root, latestName))
	s.Steps, _ = o.StepNames()

	switch o.Accel {
	case "":
		var why string
		s.Accel, why = DetectAccel(ctx, "qemu-system-x86_64")
		logf("accelerator: %s (%s)", s.Accel, why)
	default:
		s.Accel = vm.Accel(o.Accel)
		logf("accelerator: %s (forced)", s.Accel)
	}
	s.report.Accel = s.Accel
	s.report.Steps = s.Steps
	s.report.Started = started
	return s, nil
}

// resolve validates o and makes its paths absolute. Relative paths are
// the user's: taken from the directory go test (or the command) was
// started in, not from vmtests/.
func (o Options) resolve() (Options, error) {
	if err := o.Validate(); err != nil {
		return o, err
	}
	for _, p := range []*string{&o.Kernel, &o.KDIR, &o.ArtifactsDir} {
		abs, err := userpath.Resolve(*p)
		if err != nil {
			return o, err
		}
		*p = abs
	}
	if o.Accel == string(vm.AccelKVM) {
		if err := checkKVM("/dev/kvm"); err != nil {
			return o, err
		}
	}
	if fi, err := os.Stat(o.ArtifactsDir); o.ArtifactsDir != "" && err == nil && !fi.IsDir() {
		return o, fmt.Errorf("-artifacts-dir %s is a file, not a directory", o.ArtifactsDir)
	}
	return o, nil
}

// checkKVM says why -accel kvm cannot work when dev, the KVM device,
// cannot be opened: without it QEMU would only fail each boot.
func checkKVM(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("-accel kvm: %w: use -accel tcg, or leave -accel out to use KVM only where QEMU can", err)
	}
	return f.Close()
}

// selection returns the kernels o selects from the matrix, or the
// user's own kernel (custom, and as the one kernel).
func (o Options) selection(logf func(string, ...any)) (selected []kernels.Kernel, custom *kernels.Fetched, err error) {
	if o.Kernel != "" {
		// A file that is no kernel, or a tree for another kernel, would
		// fail only after a module build and a boot: say so now.
		img, err := bootimage.CheckTree(o.Kernel, o.KDIR)
		if err != nil {
			return nil, nil, err
		}
		logf("custom kernel: %s %s", img.Kind, img.Release)
		f, err := kernels.Custom(o.Kernel, o.KDIR)
		if err != nil {
			return nil, nil, err
		}
		return []kernels.Kernel{f.Kernel}, f, nil
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return nil, nil, err
	}
	selected, err = kernels.Select(matrix, o.KernelNames())
	return selected, nil, err
}

// Check checks o as NewSession would, without detecting the accelerator
// or touching the cache, and returns the names of the targets it selects
// (kernels built from source are listed even when a real run would skip
// them for want of a cached build). It is how a dry run
// (KMODTEST_SKIP_VM=1) still rejects bad options.
func (o Options) Check() ([]string, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	selected, _, err := o.selection(func(string, ...any) {})
	if err != nil {
		return nil, err
	}
	targets, err := Targets(selected)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(vm.QEMUBinary(arch.AMD64)); err == nil {
		if _, err := ChooseCPU(context.Background(), targets, o.CPU, func(string, ...any) {}); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, tg := range targets {
		names = append(names, tg.Name())
	}
	return names, nil
}

// qemuBinaries lists the QEMU systems the kernels boot under.
func qemuBinaries(ks []kernels.Kernel) []string {
	var bins []string
	for _, k := range ks {
		if bin := vm.QEMUBinary(k.Arch); !slices.Contains(bins, bin) {
			bins = append(bins, bin)
		}
	}
	return bins
}

// A baseBuild is one architecture's base image, built once per session.
type baseBuild struct {
	once sync.Once
	base *initramfs.Base
	err  error
}

// BaseImage builds the shared amd64 u-root image once per session.
func (s *Session) BaseImage() (*initramfs.Base, error) {
	return s.BaseImageFor(arch.AMD64)
}

// BaseImageFor builds the shared u-root image for arch once per session.
func (s *Session) BaseImageFor(a arch.Arch) (*initramfs.Base, error) {
	s.baseMu.Lock()
	b, ok := s.bases[a]
	if !ok {
		b = &baseBuild{}
		s.bases[a] = b
	}
	s.baseMu.Unlock()
	b.once.Do(func() {
		ib := &initramfs.Builder{RepoDir: s.Repo, CacheDir: s.Cache.Dir, Arch: a, Logf: s.Logf}
		b.base, b.err = ib.Base(s.ctx)
	})
	return b.base, b.err
}

// BuildBaseImages builds the base image of every architecture among the
// session's targets, one after the other (each is a Go build); errors
// are returned when a boot asks for the image.
func (s *Session) BuildBaseImages() {
	seen := map[arch.Arch]bool{}
	for _, t := range s.Targets {
		if a := t.Kernel.Arch; !seen[a] {
			seen[a] = true
			s.BaseImageFor(a)
		}
	}
}

// AccelFor is the accelerator for a target: the session's for kernels
// of this machine's architecture, TCG for the others (KVM runs only
// guests of the host's own architecture).
func (s *Session) AccelFor(t Target) vm.Accel {
	if t.Kernel.Arch.OrDefault() != arch.Host() {
		return vm.AccelTCG
	}
	return s.Accel
}

// A Prep is one kernel fetched and the module built for it, started at
// most once per session and shared by every target and fixture that
// needs it. Its fields are set once Done is closed.
type Prep struct {
	done   chan struct{}
	Kernel *kernels.Fetched
	// Image is what QEMU boots.
	Image string
	// Port says how an arm64 guest gets its result port; nil for amd64.
	Port   *bootimage.VirtioPort
	Module *kbuild.ModuleBuild
	Err    error
}

// Done is closed when the preparation has finished.
func (p *Prep) Done() <-chan struct{} { return p.done }

// Wait waits for the preparation, or for ctx.
func (p *Prep) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Prepare fetches k and builds the module source (with patch applied, if
// any) for it, in the background. The work runs under the ctx of the
// first caller for k and patch: cancelling it stops the downloads and
// builds.
func (s *Session) Prepare(ctx context.Context, k kernels.Kernel, patch string) *Prep {
	key := k.Name + "\x00" + patch
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if p, ok := s.preps[key]; ok {
		return p
	}
	p := &Prep{done: make(chan struct{})}
	s.preps[key] = p
	go func() {
		defer close(p.done)
		ctx, cancel := s.jobContext(ctx)
		defer cancel()
		p.Err = s.prepare(ctx, p, k, patch)
	}()
	return p
}

// jobContext returns a context done when ctx or the session's is.
func (s *Session) jobContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.ctx, func() { cancel(context.Cause(s.ctx)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

func (s *Session) prepare(ctx context.Context, p *Prep, k kernels.Kernel, patch string) error {
	f := s.Custom
	if f == nil {
		var err error
		if f, err = s.Cache.Fetch(ctx, k); err != nil {
			return err
		}
	}
	p.Kernel = f
	image, why, err := s.Cache.BootImage(ctx, f)
	if err != nil {
		return err
	}
	p.Image = image
	if patch == "" {
		s.Logf("boot image for %s: %s", k.Name, why)
	}
	if p.Port, err = kernels.ResultPort(f); err != nil {
		return err
	}
	p.Module, err = s.Cache.BuildModule(ctx, f, filepath.Join(s.Repo, "kmod"), patch)
	return err
}

// A Job is one target to build, boot and judge.
type Job struct {
	Target Target
	// Steps to run; nil means the session's.
	Steps []string
	// Patch, when set, is a fixture: a patch that breaks the module.
	Patch string
	// Dir receives the artifacts.
	Dir string
	// Silence, when set, replaces the default bound on the time between
	// two events from the prober.
	Silence time.Duration
	// Rerun returns the command that reruns this job, narrowed to one
	// step when step is not empty.
	Rerun func(step string) string
	// BootModules are modules the guest loads while it boots, before the
	// module under test (Boot.BootModules).
	BootModules []string
	// Fixture names the job in the report when it proves a detector
	// without a patch (a module loaded at boot, say).
	Fixture string
}

// An Outcome is one job's build, boot and verdict. When Build is set,
// nothing was booted.
type Outcome struct {
	Build    error
	Warnings []string
	Boot     Boot
	Result   *Result
	Report   *verdict.Report
	// Coverage is the module's line coverage when it was built with gcov
	// profiling and the guest handed its data back (else nil; CoverageErr
	// says why it could not be computed).
	Coverage    *coverage.Result
	CoverageErr error
	// StepCoverage is what each step ran (coverage/steps.txt), from the
	// gcov data the guest sent after every step; nil, with
	// StepCoverageErr saying why, when it could not be computed.
	StepCoverage    *coverage.Steps
	StepCoverageErr error
	// CoverageGaps are the lines of the module that never ran and have no
	// reason in kmod/unreachable.txt, and the reasons there that name no
	// line left unrun: the goal is every line run or explained.
	CoverageGaps []string
}

// BootTarget builds, boots and judges one job and records its row in
// the report. It returns an error only when the harness itself cannot
// go on; what the module did is in the Outcome.
func (s *Session) BootTarget(ctx context.Context, j Job) (*Outcome, error) {
	ctx, cancel := s.jobContext(ctx)
	defer cancel()
	steps := j.Steps
	if steps == nil {
		steps = s.Steps
	}
	j.Target = s.CPU.Apply(j.Target)
	r := Row{Name: j.Target.Name(), Target: j.Target, Steps: map[string]string{}, CPU: VMConfig(j.Target, s.AccelFor(j.Target), 0).CPUModel()}
	if j.Patch != "" {
		r.Fixture = strings.TrimSuffix(filepath.Base(j.Patch), ".patch")
	}
	if j.Fixture != "" {
		r.Fixture = j.Fixture
	}
	if r.Fixture != "" {
		r.Name += " " + r.Fixture
	}
	if n := j.Target.SMP(); n != DefaultSMP {
		r.Name += fmt.Sprintf(" smp=%d", n)
	}
	defer func() { s.report.Add(r) }()

	p := s.Prepare(ctx, j.Target.Kernel, j.Patch)
	if err := p.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.Steps[StepBuild], r.First = contract.StatusFail, StepBuild
		r.BuildError = err.Error()
		return &Outcome{Build: err}, nil
	}
	r.Steps[StepBuild] = contract.StatusPass
	r.Release = p.Kernel.Release
	timings := p.Kernel.Timings
	r.Timings = []time.Duration{timings.Fetch, timings.BuildRoot, p.Module.Duration}
	r.Cached = fmt.Sprintf("kernel:%v module:%v", timings.Cached, p.Module.Cached)
	r.KernelCached, r.ModuleCached = timings.Cached, p.Module.Cached

	base, err := s.BaseImageFor(j.Target.Kernel.Arch)
	if err != nil {
		return nil, fmt.Errorf("base initramfs: %w", err)
	}
	b := Boot{
		Target:  j.Target,
		Kernel:  p.Kernel,
		Image:   p.Image,
		Port:    p.Port,
		Ko:      p.Module.Ko,
		Base:    base.Path,
		Steps:   steps,
		Dir:     j.Dir,
		Accel:   s.AccelFor(j.Target),
		Rerun:   j.Rerun,
		Silence: j.Silence,

		BootModules: j.BootModules,

		GcovSnapshots: p.Module.GcovDir != "",
	}
	var res *Result
	if s.restorable(j) {
		res, r.Guest, err = s.restore(ctx, b)
	}
	if res == nil && err == nil {
		s.Logf("boot %s: starting (%s, %d steps)", r.Name, b.Accel, len(steps))
		res, err = b.Run(ctx)
		r.Guest = GuestBooted
	}
	if err != nil {
		return nil, err
	}
	r.Cached += " guest:" + r.Guest
	if j.Rerun != nil {
		script := s.RerunScript(j.Rerun(""))
		if err := os.WriteFile(filepath.Join(j.Dir, "rerun.sh"), []byte(script), 0o755); err != nil {
			return nil, fmt.Errorf("write rerun command: %w", err)
		}
	}
	passed := 0
	var probeTime time.Duration
	for _, st := range res.Report.Steps {
		if st.Status == contract.StatusPass {
			passed++
		}
		probeTime += time.Duration(st.DurationMS) * time.Millisecond
	}
	s.Logf("boot %s: %d of %d steps passed, %.1fs", r.Name, passed, len(res.Report.Steps), res.Boot.Seconds())
	r.Timings = append(r.Timings, res.Initramfs, res.Boot, probeTime)
	r.Verdict = res.Report
	for _, st := range append([]verdict.Step{res.Report.Boot}, append(res.Report.Steps, res.Report.Log)...) {
		r.Steps[st.Name] = st.Status
		if st.RoundTrips != nil {
			r.RoundTrips = st.RoundTrips
		}
		if st.Failed() && r.First == "" {
			r.First = st.Name
		}
	}
	out := &Outcome{Warnings: p.Module.Warnings, Boot: b, Result: res, Report: res.Report}
	if p.Module.GcovDir != "" {
		var ex coverage.Explained
		out.Coverage, ex, out.CoverageErr = moduleCoverage(ctx, p, res.Output.Events, filepath.Join(s.Repo, "kmod", ReasonsFile), j.Dir)
		switch {
		case out.CoverageErr != nil:
			r.Coverage = "no coverage: " + out.CoverageErr.Error()
		case out.Coverage != nil:
			out.CoverageGaps = ex.Gaps()
			r.Coverage = fmt.Sprintf("%s; never run: %d line(s), %d without a reason in kmod/%s",
				out.Coverage.Summary(), len(ex.Lines), len(ex.Unexplained), ReasonsFile)
			s.Logf("coverage %s: %s; %s", r.Name, r.Coverage, filepath.Join(j.Dir, "coverage"))
		}
		start := time.Now()
		gcov := coverage.GcovTool(p.Kernel.Compiler())
		snaps := StepSnapshots(steps, res.Output.Events)
		out.StepCoverage, out.StepCoverageErr = coverage.GenerateSteps(ctx, gcov, p.Module.GcovDir, snaps, filepath.Join(j.Dir, "coverage"))
		if out.StepCoverageErr != nil {
			s.Logf("coverage %s: no per-step coverage: %v", r.Name, out.StepCoverageErr)
		} else {
			s.Logf("coverage %s: per-step coverage of %d steps in %.1fs: %s", r.Name, len(snaps), time.Since(start).Seconds(), out.StepCoverage.Text)
		}
	}
	return out, nil
}

// StepSnapshots pairs every step of a run, in order, with the gcov data
// its end event carried (Boot.GcovSnapshots), or says why there is none.
func StepSnapshots(steps []string, events []contract.Event) []coverage.Snapshot {
	ends := map[string]contract.Event{}
	for _, e := range events {
		if e.Kind == contract.KindEnd {
			ends[e.Step] = e
		}
	}
	var snaps []coverage.Snapshot
	for _, name := range steps {
		e, ok := ends[name]
		sn := coverage.Snapshot{Step: name, Gcda: e.Files}
		switch {
		case !ok:
			sn.Missing = "the step did not end: the prober or the guest stopped"
		case len(e.Files) == 0:
			sn.Missing = fmt.Sprintf("the step (%s) sent no gcov data: the module was not loaded yet, or reading it failed", e.Status)
		}
		snaps = append(snaps, sn)
	}
	return snaps
}

// ReasonsFile, in the module's directory, gives the reason for each line
// of the module that no test can run (see coverage.LoadReasons).
const ReasonsFile = "unreachable.txt"

// moduleCoverage turns the gcov data of the coverage step into line
// coverage, matches the lines never run against the reasons file, and
// writes them, with their reasons, to coverage/unrun.txt. It returns
// nil when the guest sent no gcov data.
func moduleCoverage(ctx context.Context, p *Prep, events []contract.Event, reasonsPath, dir string) (*coverage.Result, coverage.Explained, error) {
	var files map[string][]byte
	for _, e := range events {
		if e.Kind == contract.KindEnd && e.Step == contract.StepCoverage {
			files = e.Files
		}
	}
	if len(files) == 0 {
		return nil, coverage.Explained{}, nil
	}
	reasons, err := coverage.LoadReasons(reasonsPath)
	if err != nil {
		return nil, coverage.Explained{}, err
	}
	out := filepath.Join(dir, "coverage")
	cov, err := coverage.Generate(ctx, coverage.GcovTool(p.Kernel.Compiler()), p.Module.GcovDir, files, out)
	if err != nil {
		return nil, coverage.Explained{}, err
	}
	ex := cov.Explain(reasons, reasonsPath)
	unrun := strings.Join(ex.Lines, "\n")
	if err := os.WriteFile(filepath.Join(out, "unrun.txt"), []byte(unrun+"\n"), 0o644); err != nil {
		return nil, coverage.Explained{}, fmt.Errorf("coverage: %w", err)
	}
	return cov, ex, nil
}

// Finish writes the timing report and the kernels x steps summary to w,
// and a copy to report.txt in the artifacts directory: go test shows a
// passing package's output only with -v. timings.json beside it holds the
// timing table for machines (kmodtest plan -costs), results.json and
// results.ktap the results for other tools (package runresults). It
// writes nothing when no target was booted.
func (s *Session) Finish(w io.Writer) error {
	text := s.report.String()
	if text == "" {
		return nil
	}
	fmt.Fprint(w, text)
	if err := os.MkdirAll(s.Artifacts, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	path := filepath.Join(s.Artifacts, "report.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(w, "report: %s\n", path)
	if err := s.report.writeTimings(s.Artifacts); err != nil {
		return err
	}
	return s.writeResults()
}

// How a run's guest started (Row.Guest).
const (
	GuestBooted   = "booted"
	GuestRestored = "restored"
	GuestSaved    = "saved"
)

// restorable reports whether j's guest may be restored from a saved one:
// not with -boot, and not with modules loaded at boot (a saved guest has
// booted already). Both architectures have a job port (vm.JobPort).
func (s *Session) restorable(j Job) bool {
	return !s.Options.Boot && len(j.BootModules) == 0
}

// restore runs b on a restored copy of its target's saved guest, saving
// one first if the cache has none: the boot it skips (its console
// included, judged with every run) happened once, when it was saved.
// It returns a nil Result, and logs why, when no guest can be saved for
// b: b then boots.
func (s *Session) restore(ctx context.Context, b Boot) (*Result, string, error) {
	snap, saved, err := s.snapshot(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		s.Logf("restore %s: no saved guest (%v): booting instead", b.Target.Name(), err)
		return nil, "", nil
	}
	s.Logf("restore %s: starting (%s, %d steps)", b.Target.Name(), b.Accel, len(b.Steps))
	wr, err := snap.Start(ctx, b.Dir, b.Silence)
	if err != nil {
		return nil, "", err
	}
	res, err := wr.Finish(ctx, b.Ko, contract.Job{Steps: b.Steps, GcovSnapshots: b.GcovSnapshots})
	if err != nil {
		return nil, "", err
	}
	how := GuestRestored
	if saved {
		how = GuestSaved
	}
	return res, how, nil
}

// A savedGuest is one target's saved guest, found or made once per
// session: the cache verifies it (a sha256 of its state) on that use.
type savedGuest struct {
	once sync.Once
	snap *Snapshot
	err  error
}

// snapshot returns the saved guest of b's target, making it if the cache
// has none; saved says this call made it.
func (s *Session) snapshot(ctx context.Context, b Boot) (snap *Snapshot, saved bool, err error) {
	v := VMConfig(b.Target, b.Accel, 0)
	key := fmt.Sprintf("%s %s %s %d %d", b.Target.Name(), b.Image, v.CPUModel(), v.SMP, v.MemoryMB)
	s.savedMu.Lock()
	g, ok := s.saved[key]
	if !ok {
		g = &savedGuest{}
		s.saved[key] = g
	}
	s.savedMu.Unlock()
	g.once.Do(func() {
		g.snap, g.err = PrepareSnapshot(ctx, s.Cache, b.Target, b.Image, b.Port, b.Base, b.Accel, s.Logf)
		saved = g.err == nil && g.snap.Saved > 0
	})
	if g.err != nil && ctx.Err() == nil && errors.Is(g.err, context.Canceled) {
		// The job that made it was cancelled, not this one: try again.
		s.savedMu.Lock()
		delete(s.saved, key)
		s.savedMu.Unlock()
		return s.snapshot(ctx, b)
	}
	return g.snap, saved, g.err
}
