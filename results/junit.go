package results

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// JUnit XML, as CI systems read it: one testsuite per shard and package,
// one testcase per test and subtest.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// JUnit writes the results as JUnit XML to w. A test that never
// finished is a failure; so is a failed package with no failed test (a
// test binary that did not build or stopped before its tests), and a
// missing shard.
func (r *Results) JUnit(w io.Writer) error {
	var all junitSuites
	fails := r.Failures()
	var suites []junitSuite
	for _, s := range r.Shards {
		suites = append(suites, shardSuites(s, fails)...)
	}
	for _, f := range fails {
		if f.Status == StatusMissing {
			suites = append(suites, junitSuite{Name: f.Shard, Tests: 1, Failures: 1, Time: seconds(0), Cases: []junitCase{{
				Classname: f.Shard, Name: f.Test, Time: seconds(0),
				Failure: &junitMessage{Message: f.Output[0]},
			}}})
		}
	}
	for _, js := range suites {
		all.Tests += js.Tests
		all.Failures += js.Failures
		all.Skipped += js.Skipped
		all.Suites = append(all.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// failureMessage is a failed test's first line of output, or why it has
// none.
func failureMessage(t *Test) string {
	if t.Status == StatusUnfinished {
		return "did not finish: the test binary stopped (timeout, crash or a cancelled job)"
	}
	for _, l := range t.Output {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "failed"
}

func lastLine(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

func seconds(s float64) string {
	return fmt.Sprintf("%.3f", s)
}

// shardSuites returns a testsuite per package of shard s, by package
// name. fails are the run's failures: a failed package whose failure is
// its own gets a testcase of its own.
func shardSuites(s *Shard, fails []Failure) []junitSuite {
	bySuite := map[string]*junitSuite{}
	suite := func(pkg string) *junitSuite {
		if bySuite[pkg] == nil {
			bySuite[pkg] = &junitSuite{Name: s.Name + ": " + pkg, Time: seconds(s.Elapsed)}
		}
		return bySuite[pkg]
	}
	for pkg := range s.Packages {
		suite(pkg)
	}
	for _, t := range s.Tests {
		js := suite(t.Package)
		c := junitCase{Classname: t.Package, Name: t.Name, Time: seconds(t.Elapsed)}
		switch {
		case t.Failed():
			c.Failure = &junitMessage{Message: failureMessage(t), Text: strings.Join(t.Output, "\n")}
			js.Failures++
		case t.Status == "skip":
			c.Skipped = &junitMessage{Message: lastLine(t.Output)}
			js.Skipped++
		}
		js.Cases = append(js.Cases, c)
		js.Tests++
	}
	for _, f := range fails {
		pkg, ok := strings.CutPrefix(f.Test, "package ")
		if f.Shard != s.Name || !ok {
			continue
		}
		js := suite(pkg)
		js.Cases = append(js.Cases, junitCase{Classname: pkg, Name: "package", Time: seconds(s.Elapsed),
			Failure: &junitMessage{Message: "the package failed with no failed test: see its output", Text: strings.Join(f.Output, "\n")}})
		js.Tests++
		js.Failures++
	}
	var out []junitSuite
	for _, pkg := range slices.Sorted(maps.Keys(bySuite)) {
		out = append(out, *bySuite[pkg])
	}
	return out
}
