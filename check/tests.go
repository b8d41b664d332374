package check

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/testcmd"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/project"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// The project's own tests (kmodtest.json's tests): the host builds the
// programs they need for the guest, the prober runs them once every
// module is loaded (contract.ProjectJob.Tests), and each test, and each
// of its KTAP subtests, is a row of the table with its state in the
// tests column.

// testBuildLines bounds the compiler lines a failed test build quotes.
const testBuildLines = 30

// A builtTests is what the guest gets for a project's tests.
type builtTests struct {
	files    []initramfs.File
	commands []contract.ProjectCommand
	// failed holds the rows of tests whose program did not build: they
	// do not run.
	failed []Row
}

// buildTests builds the Go and C programs of p's tests for a guest of
// arch a, into dir, and returns the files and commands for the guest.
// A program that does not build fails its test's row; an error is
// returned only when the build cannot be tried.
func buildTests(ctx context.Context, p *project.Project, a arch.Arch, dir string, newTestRow func(name string) Row) (builtTests, error) {
	var out builtTests
	if len(p.Tests) == 0 {
		return out, nil
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return out, fmt.Errorf("test programs: %w", err)
	}
	goBuilt := map[string][]string{} // a Go package, built once: why it failed, or nil
	for _, t := range p.Tests {
		var prog string
		var why []string
		switch {
		case t.Go != "":
			prog = path.Base(t.Go)
			var ok bool
			if why, ok = goBuilt[t.Go]; !ok {
				why = buildGo(ctx, p.Dir, t.Go, a, filepath.Join(bin, prog))
				goBuilt[t.Go] = why
			}
		case len(t.C) > 0:
			prog = t.Name
			why = buildC(ctx, p.Dir, t.C, a, filepath.Join(bin, prog))
		}
		if why != nil {
			row := newTestRow(contract.TestStep(t.Name))
			row.States["tests"] = StateFail
			row.Why["tests"] = why
			out.failed = append(out.failed, row)
			continue
		}
		if prog != "" && !slices.ContainsFunc(out.files, func(f initramfs.File) bool { return path.Base(f.Target) == prog }) {
			out.files = append(out.files, initramfs.File{Source: filepath.Join(bin, prog), Target: contract.ProjectTestBin + "/" + prog, Mode: 0o755})
		}
		cmd := contract.ProjectCommand{Name: t.Name, Args: t.Run, KTAP: t.KTAP}
		if t.Timeout != "" {
			d, err := time.ParseDuration(t.Timeout)
			if err != nil {
				return out, fmt.Errorf("test %s: timeout %q: %w", t.Name, t.Timeout, err)
			}
			cmd.TimeoutMS = d.Milliseconds()
		}
		out.commands = append(out.commands, cmd)
	}
	return out, nil
}

// buildGo builds the project's Go package pkg for the guest, statically
// (CGO_ENABLED=0: the guest has no C library), into out. It returns nil,
// or the command and the compiler's lines.
func buildGo(ctx context.Context, dir, pkg string, a arch.Arch, out string) []string {
	if _, err := exec.LookPath("go"); err != nil {
		return []string{fmt.Sprintf("build the test program %s: the go command is not on PATH: install Go (https://go.dev/dl)", pkg)}
	}
	// Built from its own directory, so that the module holding it is
	// found from there: the project's go.mod, or one of the tests' own.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join(dir, filepath.FromSlash(pkg))
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+string(a.OrDefault()), "CGO_ENABLED=0")
	return runBuild(cmd, "cd "+pkg+" && GOOS=linux GOARCH="+string(a.OrDefault())+" CGO_ENABLED=0 go build -o "+filepath.Base(out)+" .")
}

// buildC builds the project's C sources into one static program (the
// guest, a u-root image, has no C library) with the host's compiler:
// gcc for an amd64 guest, aarch64-linux-gnu-gcc for an arm64 one.
func buildC(ctx context.Context, dir string, srcs []string, a arch.Arch, out string) []string {
	cc := "gcc"
	if a.OrDefault() != arch.Host() {
		cc = "aarch64-linux-gnu-gcc"
		if a.OrDefault() == arch.AMD64 {
			cc = "x86_64-linux-gnu-gcc"
		}
	}
	if _, err := exec.LookPath(cc); err != nil {
		return []string{fmt.Sprintf("build the test program %s: %s is not on PATH: install gcc (Debian: apt-get install gcc, or gcc-aarch64-linux-gnu for arm64 guests)", filepath.Base(out), cc)}
	}
	args := append([]string{"-static", "-O2", "-Wall", "-o", out}, srcs...)
	cmd := exec.CommandContext(ctx, cc, args...)
	cmd.Dir = dir
	return runBuild(cmd, cc+" "+strings.Join(append([]string{"-static", "-O2", "-Wall", "-o", filepath.Base(out)}, srcs...), " "))
}

// runBuild runs a test program's build: nil when it succeeds, else the
// command and the end of its output. A static glibc program links with
// warnings about getpwnam and the like; they are not failures.
func runBuild(cmd *exec.Cmd, shown string) []string {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if err == nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	lines = lines[max(0, len(lines)-testBuildLines):]
	return append([]string{"the test program does not build (" + err.Error() + "):", "$ " + shown}, lines...)
}

// isTestStep says whether a guest step is one of the project's tests or
// KUnit suites, or a subtest of one.
func isTestStep(name string) bool {
	return strings.HasPrefix(name, contract.ProjectTests+"/") || strings.HasPrefix(name, contract.ProjectKUnit+"/")
}

// withSubtests returns steps with the KTAP subtests the guest reported
// (steps named TEST/SUBTEST, known only once they ran) after their
// test's step, in the order they ran.
func withSubtests(steps []string, events []contract.Event) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s)
		if !isTestStep(s) {
			continue
		}
		for _, e := range events {
			if e.Kind == contract.KindEnd && strings.HasPrefix(e.Step, s+"/") && !slices.Contains(out, e.Step) {
				out = append(out, e.Step)
			}
		}
	}
	return out
}

// testRows makes a row per test and subtest step the guest ran, its
// state in the tests column; a failure quotes the test's reason and the
// end of its output, a subtest's its KTAP diagnostics, and its notes
// name the guest's directory dir.
func testRows(rep *verdict.Report, steps []string, dir string, newTestRow func(name string) Row) []Row {
	var rows []Row
	for _, name := range steps {
		if !isTestStep(name) {
			continue
		}
		s, ok := rep.Step(name)
		if !ok {
			continue
		}
		row := newTestRow(name)
		row.Seconds["tests"] = float64(s.DurationMS) / 1000
		switch s.Status {
		case contract.StatusPass:
			row.States["tests"] = StatePass
		case contract.StatusFail:
			row.States["tests"] = StateFail
		case contract.StatusSkip:
			row.States["tests"] = StateSkip
		}
		if s.Status != contract.StatusPass {
			for _, r := range s.Reasons {
				row.Why["tests"] = append(row.Why["tests"], strings.Split(r, "\n")...)
			}
			row.Why["tests"] = append(row.Why["tests"], indent(bounded(s.Evidence))...)
		}
		if s.Status == contract.StatusFail {
			row.Notes = append(row.Notes, "guest: "+dir+" (console.log, results.log)")
		}
		rows = append(rows, row)
	}
	return rows
}

// stretchForTests lets the guest run the project's tests: the host's
// silence limit grows to cover the longest test (a test's step is
// silent until it ends), and the guest's time limit by every test's
// timeout, each times the kernel's slowdown.
func stretchForTests(vcfg *vm.Config, tests []contract.ProjectCommand, slowdown int) {
	for _, t := range tests {
		d := time.Duration(t.TimeoutMS) * time.Millisecond
		if d <= 0 {
			d = testcmd.DefaultTimeout
		}
		d *= time.Duration(max(slowdown, 1))
		vcfg.Timeout += d + contract.ProjectTestGrace
		vcfg.StepTimeout = max(vcfg.StepTimeout, d+contract.ProjectTestGrace+testSilenceMargin)
	}
}

// testSilenceMargin is what the silence limit allows past a test's
// timeout and grace: the prober drains the kernel log and reports the
// test's subtests before the next event.
const testSilenceMargin = 30 * time.Second
