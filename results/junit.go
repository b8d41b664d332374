package results

import (
	"encoding/xml"
	"fmt"
	"io"
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
// test binary that did not build or stopped before its tests).
func (r *Results) JUnit(w io.Writer) error {
	var all junitSuites
	fails := map[string]bool{}
	for _, f := range r.Failures() {
		fails[f.Shard+"\x00"+f.Test] = true
	}
	for _, s := range r.Shards {
		bySuite := map[string]*junitSuite{}
		var order []string
		suite := func(pkg string) *junitSuite {
			if bySuite[pkg] == nil {
				bySuite[pkg] = &junitSuite{Name: s.Name + ": " + pkg, Time: seconds(s.Elapsed)}
				order = append(order, pkg)
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
		for pkg, st := range s.Packages {
			if !packageFailed(st) || !fails[s.Name+"\x00package "+pkg] {
				continue
			}
			js := suite(pkg)
			js.Cases = append(js.Cases, junitCase{Classname: pkg, Name: "package", Time: seconds(s.Elapsed),
				Failure: &junitMessage{Message: "the package failed with no failed test: see its output", Text: strings.Join(s.Output, "\n")}})
			js.Tests++
			js.Failures++
		}
		slices.Sort(order)
		for _, pkg := range order {
			js := bySuite[pkg]
			all.Tests += js.Tests
			all.Failures += js.Failures
			all.Skipped += js.Skipped
			all.Suites = append(all.Suites, *js)
		}
	}
	for _, f := range r.Failures() {
		if f.Status != StatusMissing {
			continue
		}
		all.Tests++
		all.Failures++
		all.Suites = append(all.Suites, junitSuite{Name: f.Shard, Tests: 1, Failures: 1, Time: seconds(0), Cases: []junitCase{{
			Classname: f.Shard, Name: f.Test, Time: seconds(0),
			Failure: &junitMessage{Message: f.Output[0]},
		}}})
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
