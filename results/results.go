// Package results merges what the shards of a CI run found into one
// report (kmodtest merge): it reads the `go test -json` output of each
// shard, in the event format of cmd/test2json (Action, Test, Output,
// Elapsed), and gives the kernels x steps table of package harness, a
// JUnit XML file and one self-contained HTML page with each failure, its
// reasons and its rerun line.
//
// A target's steps are the subtests TestModule/<target>/<step>; every
// other test (the fixture suites, the checks of the harness) is listed
// by name. A test that started and never ended (a -timeout panic, a
// crash, a cancelled job) counts as failed: its output holds why.
package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/runresults"
)

// An Event is one line of `go test -json` (cmd/test2json's TestEvent).
type Event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// Statuses of a test beyond test2json's pass, fail and skip.
const (
	// StatusUnfinished is a test that ran and never ended: the test
	// binary stopped (timeout, crash) or the job was cancelled.
	StatusUnfinished = "unfinished"
	// StatusMissing is a shard the plan made that left no output.
	StatusMissing = "missing"
)

// A Test is one test or subtest of one shard.
type Test struct {
	Package string
	// Name is the full name, "TestModule/6.1/reply".
	Name string
	// Status is pass, fail, skip or StatusUnfinished.
	Status  string
	Elapsed float64
	// Output is what the test printed, without go test's own
	// "=== RUN" and "--- PASS" lines.
	Output []string
}

// Failed reports whether the test failed or never finished.
func (t *Test) Failed() bool {
	return t.Status == "fail" || t.Status == StatusUnfinished
}

// A Shard is one `go test -json` output.
type Shard struct {
	// Name is the file's name without .json, or its directory's for a
	// file named go-test.json ("shard-1-of-3").
	Name string
	// Tests are in the order they started.
	Tests []*Test
	// Packages maps each package to its pass or fail; Output is what
	// the packages printed outside any test (the harness's progress
	// lines, its report, a build failure).
	Packages map[string]string
	Output   []string
	// Elapsed is the longest package's time in seconds.
	Elapsed float64
	// End is the time of the last event; Dir the directory of the file.
	End time.Time
	Dir string
}

// Failed reports whether any package of the shard failed or never
// finished (a package without tests is skipped, not failed).
func (s *Shard) Failed() bool {
	for _, st := range s.Packages {
		if packageFailed(st) {
			return true
		}
	}
	return false
}

func packageFailed(status string) bool {
	return status == "fail" || status == StatusUnfinished
}

// Parse reads one `go test -json` stream. Lines that are no JSON event
// (go test's own messages when it cannot build, say) go into Output.
func Parse(name string, r io.Reader) (*Shard, error) {
	s := &Shard{Name: name, Packages: map[string]string{}}
	byName := map[string]*Test{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			s.Output = append(s.Output, string(line))
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("line %d: %w: want the output of go test -json", n, err)
		}
		if e.Time.After(s.End) {
			s.End = e.Time
		}
		if e.Test == "" {
			switch e.Action {
			case "output", "build-output":
				s.Output = append(s.Output, strings.TrimSuffix(e.Output, "\n"))
			case "pass", "fail", "skip":
				s.Packages[e.Package] = e.Action
				s.Elapsed = max(s.Elapsed, e.Elapsed)
			case "start":
				s.Packages[e.Package] = StatusUnfinished
			}
			continue
		}
		key := e.Package + "\x00" + e.Test
		t := byName[key]
		if t == nil {
			t = &Test{Package: e.Package, Name: e.Test, Status: StatusUnfinished}
			byName[key] = t
			s.Tests = append(s.Tests, t)
		}
		switch e.Action {
		case "output":
			if !goTestLine(e.Output) {
				t.Output = append(t.Output, strings.TrimSuffix(e.Output, "\n"))
			}
		case "pass", "fail", "skip":
			t.Status, t.Elapsed = e.Action, e.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(s.Packages) == 0 && len(s.Tests) == 0 {
		return nil, errors.New("no test events: want the output of go test -json")
	}
	return s, nil
}

// goTestLine reports whether line is go test's own framing of a test's
// output rather than something the test printed.
func goTestLine(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP"} {
		if strings.HasPrefix(strings.TrimLeft(line, " "), p) {
			return true
		}
	}
	return false
}

// Results are the shards of one run, and the timings they wrote.
type Results struct {
	Shards []*Shard
	// Timings are the timings.json files found beside the shards'
	// outputs.
	Timings []harness.Timings
	// Expected, when set, is the number of shards the plan made: the
	// shards named shard-<i>-of-<n> that are missing count as failures
	// (a job that failed before go test, or whose upload failed).
	Expected int
	// Runs are the results.json files found, by their directory: a
	// shard whose go test output lies in the same directory takes its
	// targets from there (see Run).
	Runs map[string]*runresults.Run
}

// Missing returns the names of the expected shards that have no output.
func (r *Results) Missing() []string {
	var out []string
	for i := 1; i <= r.Expected; i++ {
		name := fmt.Sprintf("shard-%d-of-%d", i, r.Expected)
		if !slices.ContainsFunc(r.Shards, func(s *Shard) bool { return s.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}

// Load reads the shards' outputs at paths: each a `go test -json` file,
// or a directory searched for them (*.json, except the timings.json
// files, read as timings, and the results.json files, read as runs).
// Shards are sorted by name.
func Load(paths ...string) (*Results, error) {
	if len(paths) == 0 {
		return nil, errors.New("no input: give the go test -json files of the shards, or a directory holding them")
	}
	r := &Results{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: give the go test -json files of the shards, or a directory holding them", err)
		}
		if !fi.IsDir() {
			if err := r.add(p); err != nil {
				return nil, err
			}
			continue
		}
		n, runs := len(r.Shards), len(r.Runs)
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".json") {
				return err
			}
			return r.add(path)
		})
		if err != nil {
			return nil, err
		}
		if len(r.Shards) == n && len(r.Runs) == runs {
			return nil, fmt.Errorf("%s: no go test -json output (*.json) or %s in this directory or below it", p, runresults.File)
		}
	}
	slices.SortStableFunc(r.Shards, func(a, b *Shard) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

// add reads one file: a timings.json, a results.json or a shard's output.
func (r *Results) add(path string) error {
	if filepath.Base(path) == runresults.File {
		run, err := runresults.Read(path)
		if err != nil {
			return err
		}
		if r.Runs == nil {
			r.Runs = map[string]*runresults.Run{}
		}
		r.Runs[filepath.Dir(path)] = run
		return nil
	}
	if filepath.Base(path) == harness.TimingsFile {
		t, err := harness.ReadTimings(path)
		if err != nil {
			return err
		}
		r.Timings = append(r.Timings, t)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := Parse(shardName(path), f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	s.Dir = filepath.Dir(path)
	r.Shards = append(r.Shards, s)
	return nil
}

// shardName names a shard after its file, or after the file's directory
// when the file has the generic name go-test.json (one directory per
// downloaded artifact).
func shardName(path string) string {
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	if name == "go-test" {
		return filepath.Base(filepath.Dir(path))
	}
	return name
}
