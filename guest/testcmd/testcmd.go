// Package testcmd runs a module project's own tests in the guest: its
// test commands (kmodtest.json's "tests") and the KUnit suites the
// kernel has run, each judged into a Result the host turns into a
// subtest TestModule/<module>/<kernel>/<test>.
//
// A command passes when it exits 0, skips when it exits 77 (the exit
// status automake and kselftest use for a skip), and fails otherwise,
// with the last lines of its output. A command marked KTAP prints KTAP
// (or the TAP 13 of kselftests) on stdout: its tests become the
// result's subtests, parsed by package ktap, the same code the host
// uses for KTAP files. A KUnit suite's results are read from
// /sys/kernel/debug/kunit/<suite>/results (ReadKUnit).
//
// The package is the building block; the guest's module loader decides
// when tests run (after the modules load, before they unload) and sends
// the Results to the host.
package testcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/ktap"
)

// Statuses of a result, the same words as the harness's steps.
const (
	StatusPass = ktap.StatusPass
	StatusFail = ktap.StatusFail
	StatusSkip = ktap.StatusSkip
)

// ExitSkip is the exit status that says a test skipped.
const ExitSkip = 77

// DefaultTimeout is a command's time limit when it gives none
// (kmodtest.json's tests[].timeout default).
const DefaultTimeout = 60 * time.Second

// TailLines is how many of a failed command's last output lines its
// Result keeps.
const TailLines = 30

// maxStdout bounds the stdout kept for KTAP parsing: a test that loops
// printing must not exhaust the guest's memory.
const maxStdout = 8 << 20

// A Command is one test command of a project.
type Command struct {
	// Name is the test's name, its subtest's name on the host.
	Name string
	// Args is the program and its arguments; the program is looked up
	// in PATH.
	Args []string
	// KTAP says the command prints KTAP on stdout.
	KTAP bool
	// Timeout bounds the command's run; 0 is DefaultTimeout. When it
	// expires the command's whole process group is killed.
	Timeout time.Duration
	// Dir is the working directory ("" is the caller's); Env, when not
	// nil, is the whole environment.
	Dir string
	Env []string
}

// A Result is one test's outcome.
type Result struct {
	Name string `json:"name"`
	// Status is pass, fail or skip.
	Status string `json:"status"`
	// Reason says why it failed or skipped: "exit status 3", "timed out
	// after 1m0s", "KTAP: 2 of 5 tests failed: a, b".
	Reason string `json:"reason,omitempty"`
	// ExitCode is the command's exit status, -1 when it did not exit by
	// itself (killed, not started) and for a KUnit suite.
	ExitCode int `json:"exit_code"`
	// Duration is how long it ran.
	Duration time.Duration `json:"duration_ns"`
	// Output holds the last TailLines lines of stdout and stderr,
	// interleaved as written; kept for every result, shown for failures.
	Output []string `json:"output,omitempty"`
	// KTAP is the parsed KTAP of a command marked KTAP, or of a KUnit
	// suite: its tests are the result's subtests.
	KTAP *ktap.Document `json:"ktap,omitempty"`
}

// Subtests returns the result's subtests: the top-level tests of its
// KTAP, or nil. A KUnit suite's file holds one top-level test, the
// suite: its cases are returned instead.
func (r *Result) Subtests() []*ktap.Test {
	if r.KTAP == nil {
		return nil
	}
	if len(r.KTAP.Tests) == 1 && r.KTAP.Tests[0].Name == r.Name && len(r.KTAP.Tests[0].Subtests) > 0 {
		return r.KTAP.Tests[0].Subtests
	}
	return r.KTAP.Tests
}

// Run runs c and judges it. It never returns an error: a command that
// cannot start fails, saying why.
func Run(ctx context.Context, c Command) Result {
	res := Result{Name: c.Name, ExitCode: -1}
	if len(c.Args) == 0 {
		res.Status, res.Reason = StatusFail, "no command: give the test's program and its arguments"
		return res
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	setProcessGroup(cmd)
	// After a kill, do not wait for grandchildren that kept the pipes.
	cmd.WaitDelay = 2 * time.Second
	var all tail
	stdout := &capped{max: maxStdout, also: &stream{t: &all}}
	stderr := &stream{t: &all}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	stdout.also.flush()
	stderr.flush()
	res.Output = all.lines()
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Status, res.Reason = StatusFail, fmt.Sprintf("timed out after %s: killed", timeout)
	case ctx.Err() != nil:
		res.Status, res.Reason = StatusFail, "cancelled: "+ctx.Err().Error()
	case res.ExitCode == 0:
		res.Status = StatusPass
	case res.ExitCode == ExitSkip:
		res.Status, res.Reason = StatusSkip, fmt.Sprintf("exit status %d (skip)", ExitSkip)
	case err != nil && res.ExitCode < 0:
		res.Status, res.Reason = StatusFail, err.Error()
	default:
		res.Status, res.Reason = StatusFail, fmt.Sprintf("exit status %d", res.ExitCode)
	}
	if c.KTAP {
		judgeKTAP(&res, stdout.String(), stdout.truncated)
	}
	return res
}

// judgeKTAP parses a KTAP command's stdout into res.KTAP and lets it
// decide a result the exit status left passing: a failed test, or
// output that is no KTAP or breaks off, fails; all tests skipped skips.
func judgeKTAP(res *Result, stdout string, truncated bool) {
	doc, err := ktap.Parse(stdout)
	if err != nil {
		if res.Status == StatusPass {
			res.Status, res.Reason = StatusFail, "the test is marked ktap but printed no KTAP on stdout: "+err.Error()
		}
		return
	}
	res.KTAP = doc
	if truncated {
		doc.Problems = append(doc.Problems, fmt.Sprintf("stdout was cut at %d bytes", maxStdout))
	}
	if res.Status != StatusPass {
		return
	}
	switch doc.Status() {
	case ktap.StatusFail:
		res.Status, res.Reason = StatusFail, "KTAP: "+ktapFailure(doc)
	case ktap.StatusSkip:
		res.Status, res.Reason = StatusSkip, "KTAP: every test skipped"
	}
}

// ktapFailure says which tests failed, or what broke the KTAP.
func ktapFailure(doc *ktap.Document) string {
	var failed []string
	total := 0
	doc.Walk(func(path []string, t *ktap.Test) {
		if len(t.Subtests) > 0 {
			return // a parent fails with its subtests: name those
		}
		total++
		if t.Status == ktap.StatusFail {
			failed = append(failed, strings.Join(path, "/"))
		}
	})
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d tests failed: %s", len(failed), total, strings.Join(failed, ", ")))
	}
	parts = append(parts, doc.Problems...)
	if len(parts) == 0 {
		return "a test failed"
	}
	return strings.Join(parts, "; ")
}

// tail keeps the last TailLines lines written by its streams.
type tail struct {
	mu   sync.Mutex
	last []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = append(t.last, line)
	if len(t.last) > TailLines {
		t.last = t.last[len(t.last)-TailLines:]
	}
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.last...)
}

// A stream splits one output (stdout or stderr) into lines for a tail.
type stream struct {
	t       *tail
	partial []byte
}

func (s *stream) Write(p []byte) (int, error) {
	data := append(s.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.t.add(string(data[:i]))
		data = data[i+1:]
	}
	s.partial = append([]byte(nil), data...)
	return len(p), nil
}

// flush adds the last line when it had no line break.
func (s *stream) flush() {
	if len(s.partial) > 0 {
		s.t.add(string(s.partial))
		s.partial = nil
	}
}

// capped keeps up to max bytes and passes everything on to also.
type capped struct {
	buf       bytes.Buffer
	max       int
	truncated bool
	also      *stream
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
		c.truncated = true
	} else {
		c.buf.Write(p)
	}
	return c.also.Write(p)
}

func (c *capped) String() string { return c.buf.String() }
