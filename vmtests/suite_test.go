package vmtests

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/probe"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

var (
	flagKernels   = flag.String("kernels", os.Getenv("KMODTEST_KERNELS"), "comma-separated kernels of the matrix to run (default: all)")
	flagSteps     = flag.String("steps", os.Getenv("KMODTEST_STEPS"), "core (load, greet, ack, unload) or full (every scenario; make test and CI) (default: core)")
	flagKernel    = flag.String("kernel", os.Getenv("KMODTEST_KERNEL"), "bring your own kernel: path to a bzImage (needs -kdir)")
	flagKDIR      = flag.String("kdir", os.Getenv("KMODTEST_KDIR"), "bring your own kernel: its built source tree")
	flagAccel     = flag.String("accel", os.Getenv("KMODTEST_ACCEL"), "kvm or tcg (default: KVM when QEMU can use it)")
	flagFixtures  = flag.Bool("fixtures", os.Getenv("KMODTEST_FIXTURES") == "1", "also prove the harness: broken-module fixtures and a broken build (TestFixtures, TestBuildErrorShowsCompilerLines)")
	flagArtifacts = flag.String("artifacts", os.Getenv("KMODTEST_ARTIFACTS"), "artifacts directory (default: artifacts/ at the repository root)")
)

// suite is what all VM tests of one `go test` process share: built once,
// in TestMain, and read-only afterwards.
type suite struct {
	repo      string
	cache     *kernels.Cache
	targets   []harness.Target
	custom    *kernels.Fetched
	steps     []string
	accel     vm.Accel
	artifacts string

	baseOnce sync.Once
	base     *initramfs.Base
	baseErr  error

	prepMu sync.Mutex
	preps  map[string]*prep

	reportMu sync.Mutex
	rows     []row
}

var env *suite

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("KMODTEST_SKIP_VM") == "1" {
		fmt.Println("vmtests: KMODTEST_SKIP_VM=1: skipping every VM test")
		os.Exit(0)
	}
	s, err := newSuite()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtests: %v\n", err)
		os.Exit(2)
	}
	env = s
	code := m.Run()
	s.printReport()
	os.Exit(code)
}

func newSuite() (*suite, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	s := &suite{
		repo:      repo,
		cache:     &kernels.Cache{Dir: dir, Logf: logf},
		preps:     map[string]*prep{},
		artifacts: *flagArtifacts,
	}
	if s.artifacts == "" {
		s.artifacts = filepath.Join(repo, "artifacts")
	}

	switch *flagSteps {
	case "", "core":
		s.steps = probe.DefaultSteps
	case "full":
		s.steps = probe.FullSteps
	default:
		return nil, fmt.Errorf("-steps %q: want core or full", *flagSteps)
	}

	switch *flagAccel {
	case "":
		var why string
		s.accel, why = harness.DetectAccel("qemu-system-x86_64")
		logf("accelerator: %s (%s)", s.accel, why)
	case "kvm", "tcg":
		s.accel = vm.Accel(*flagAccel)
		logf("accelerator: %s (forced)", s.accel)
	default:
		return nil, fmt.Errorf("-accel %q: want kvm or tcg", *flagAccel)
	}

	if *flagKernel != "" || *flagKDIR != "" {
		if *flagKernel == "" || *flagKDIR == "" {
			return nil, errors.New("bring your own kernel needs both -kernel (a bzImage) and -kdir (its built tree)")
		}
		f, err := kernels.Custom(*flagKernel, *flagKDIR)
		if err != nil {
			return nil, err
		}
		s.custom = f
		s.targets = []harness.Target{{Kernel: f.Kernel, Profile: "default"}}
		return s, nil
	}

	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return nil, err
	}
	var names []string
	if *flagKernels != "" {
		names = strings.Split(*flagKernels, ",")
	}
	selected, err := kernels.Select(matrix, names)
	if err != nil {
		return nil, err
	}
	s.targets, err = harness.Targets(selected)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vmtests: "+format+"\n", args...)
}

// baseImage builds the shared u-root image once per process.
func (s *suite) baseImage() (*initramfs.Base, error) {
	s.baseOnce.Do(func() {
		b := &initramfs.Builder{RepoDir: s.repo, CacheDir: s.cache.Dir, Logf: logf}
		s.base, s.baseErr = b.Base()
	})
	return s.base, s.baseErr
}

// prep is one kernel fetched and one module built for it, started at most
// once per process and shared by every target and fixture that needs it.
type prep struct {
	done   chan struct{}
	kernel *kernels.Fetched
	image  string // what QEMU boots
	module *kernels.ModuleBuild
	err    error
}

// prepare fetches k and builds the module source (with patch applied, if
// any) for it, in the background; wait on the returned prep's done.
func (s *suite) prepare(k kernels.Kernel, patch string) *prep {
	key := k.Name + "\x00" + patch
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if p, ok := s.preps[key]; ok {
		return p
	}
	p := &prep{done: make(chan struct{})}
	s.preps[key] = p
	go func() {
		defer close(p.done)
		ctx := context.Background()
		f := s.custom
		if f == nil {
			f, p.err = s.cache.Fetch(ctx, k)
			if p.err != nil {
				return
			}
		}
		p.kernel = f
		var why string
		p.image, why, p.err = s.cache.BootImage(ctx, f)
		if p.err != nil {
			return
		}
		if patch == "" {
			logf("boot image for %s: %s", k.Name, why)
		}
		p.module, p.err = s.cache.BuildModule(ctx, f, filepath.Join(s.repo, "kmod"), patch)
	}()
	return p
}

// row is one target's line in the final report.
type row struct {
	name    string
	timings []time.Duration // fetch, build root, module, initramfs, boot, probe
	cached  string
	steps   map[string]string
	first   string
	// fixture names the broken module this row ran, if any: such rows
	// are expected to fail and are summarised apart.
	fixture string
}

func (s *suite) record(r row) {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.rows = append(s.rows, r)
}

// printReport prints the timing report and the kernels x steps summary,
// and keeps a copy in the artifacts directory: go test shows a passing
// package's output only with -v.
func (s *suite) printReport() {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	if len(s.rows) == 0 {
		return
	}
	var w strings.Builder
	s.writeReport(&w)
	fmt.Print(w.String())
	path := filepath.Join(s.artifacts, "report.txt")
	if err := os.MkdirAll(s.artifacts, 0o755); err == nil {
		if err := os.WriteFile(path, []byte(w.String()), 0o644); err == nil {
			fmt.Printf("report: %s\n", path)
		}
	}
}

// writeReport writes the report of the rows recorded so far.
func (s *suite) writeReport(w io.Writer) {
	sort.Slice(s.rows, func(i, j int) bool { return s.rows[i].name < s.rows[j].name })
	fmt.Fprintf(w, "\ntimings (seconds; accelerator %s):\n", s.accel)
	fmt.Fprintf(w, "%-22s %7s %7s %7s %7s %7s %7s  %s\n", "target", "fetch", "broot", "module", "initrd", "boot", "probe", "cached")
	for _, r := range s.rows {
		fmt.Fprintf(w, "%-22s", r.name)
		for _, d := range r.timings {
			fmt.Fprintf(w, " %7.2f", d.Seconds())
		}
		fmt.Fprintf(w, "  %s\n", r.cached)
	}

	steps := append([]string{"build"}, s.steps...)
	steps = append(steps, verdict.LogStep)
	fmt.Fprintf(w, "\nsummary (. pass, F fail, s skip, - not run):\n")
	for i, st := range steps {
		fmt.Fprintf(w, "  %2d %s\n", i+1, st)
	}
	fmt.Fprintf(w, "%-22s ", "target")
	for i := range steps {
		fmt.Fprintf(w, "%3d", i+1)
	}
	fmt.Fprintln(w)
	first := ""
	var fixtures []row
	for _, r := range s.rows {
		if r.fixture != "" {
			fixtures = append(fixtures, r)
			continue
		}
		fmt.Fprintf(w, "%-22s ", r.name)
		for _, st := range steps {
			mark := map[string]string{probe.StatusPass: ".", probe.StatusFail: "F", probe.StatusSkip: "s"}[r.steps[st]]
			if mark == "" {
				mark = "-"
			}
			fmt.Fprintf(w, "%3s", mark)
		}
		fmt.Fprintln(w)
		if r.first != "" && first == "" {
			first = r.name + ": " + r.first
		}
	}
	if first != "" {
		fmt.Fprintf(w, "first failure: %s\n", first)
	}
	if len(fixtures) > 0 {
		fmt.Fprintf(w, "\nbroken fixtures (each must fail; TestFixtures checks the step and reason):\n")
		for _, r := range fixtures {
			caught := "NOT CAUGHT: every step passed"
			if r.first != "" {
				caught = "first failing step: " + r.first
			}
			fmt.Fprintf(w, "  %-22s %s\n", r.fixture, caught)
		}
	}
}
