// Package ktap reads and writes test results in KTAP version 1, the
// format the kernel's tests print (Documentation/dev-tools/ktap.rst), and
// in the TAP 13 and 14 that older kselftests and KUnit print. The same
// code parses a project's test output in the guest and a run's KTAP file
// on the host, so both read a result the same way.
//
// # Reading
//
// Parse turns text into a Document: its tests, each with its number,
// name, status, directive, reason, diagnostic lines and subtests.
// Nesting follows the indentation of the KTAP lines (version, plan,
// result, "# Subtest:"): a more indented block just before a result line
// holds that test's subtests, whatever its version line says (KTAP's own,
// or TAP 14's "# Subtest:" header, or none, as KUnit's debugfs files of
// older kernels). A kselftest run by the selftests' runner prints its
// own TAP with every line prefixed "# ": a "# TAP version 13" diagnostic
// starts such a block, and its tests become the subtests of the next
// result line.
//
// Lines that are no KTAP (the kernel's messages, a program's other
// output) are kept as diagnostics of the test whose result follows them,
// as the specification asks. What breaks the structure (a plan that
// does not match the results, a block without its result line, TAP's
// "Bail out!") is recorded in Document.Problems; it fails the document.
//
// # Writing
//
// Write prints a Document as KTAP version 1 with two spaces per level,
// each subtest block headed by "KTAP version 1", "# Subtest: NAME" and
// its plan. Parse reads what Write wrote back into the same Document.
package ktap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Statuses of a test, the same words as the harness's steps.
const (
	StatusPass = "pass"
	StatusFail = "fail"
	StatusSkip = "skip"
)

// Directives after the "#" of a result line.
const (
	DirectiveSkip    = "SKIP"
	DirectiveTodo    = "TODO"
	DirectiveXfail   = "XFAIL"
	DirectiveTimeout = "TIMEOUT"
	DirectiveError   = "ERROR"
)

// A Test is one result line and what led to it.
type Test struct {
	// Number is the test's number within its level, from 1.
	Number int
	// Name is the result line's description ("example_simple_test"),
	// without TAP 14's "- " prefix.
	Name string
	// Status is StatusPass, StatusFail or StatusSkip: "ok" passes, "not
	// ok" fails, SKIP skips (with either), TODO skips a "not ok", TIMEOUT
	// and ERROR fail.
	Status string
	// OK is the result line's own word: true for "ok", false for "not ok".
	OK bool
	// Directive is SKIP, TODO, XFAIL, TIMEOUT, ERROR or "", and Reason
	// the text after it (or after "#" when there is no directive).
	Directive string
	Reason    string
	// Diagnostics are the lines printed before the result line at the
	// test's level ("# " removed) and any other output among them.
	Diagnostics []string
	// Plan is the number of subtests the subtests' plan announced, -1
	// when they had none.
	Plan     int
	Subtests []*Test
}

// A Document is a whole KTAP output.
type Document struct {
	// Version is the first version line ("KTAP version 1", "TAP version
	// 13"), or "" when there was none.
	Version string
	// Plan is N of the top-level "1..N", -1 when there was none.
	Plan  int
	Tests []*Test
	// Diagnostics are the lines after the last result line.
	Diagnostics []string
	// Problems say where the output breaks KTAP's structure: a plan
	// that does not match the results (a test that crashed before it
	// finished, say), a block of subtests with no result line.
	Problems []string
}

// Status is the document's status: fail if any test failed (a subtest
// too: a parent should fail with it, ktap.rst says) or the output had a
// problem, skip if every test skipped or there was no test, else pass.
func (d *Document) Status() string {
	if len(d.Problems) > 0 {
		return StatusFail
	}
	st := StatusSkip
	d.Walk(func(_ []string, t *Test) {
		switch {
		case t.Status == StatusFail:
			st = StatusFail
		case t.Status == StatusPass && st == StatusSkip:
			st = StatusPass
		}
	})
	return st
}

// Walk calls fn for every test of the document, depth first with each
// test before its subtests; path holds the names from the top.
func (d *Document) Walk(fn func(path []string, t *Test)) {
	var walk func(path []string, tests []*Test)
	walk = func(path []string, tests []*Test) {
		for _, t := range tests {
			p := append(append([]string(nil), path...), t.Name)
			fn(p, t)
			walk(p, t.Subtests)
		}
	}
	walk(nil, d.Tests)
}

// Headers that name a block of subtests: TAP 14's, which KUnit prints,
// and the "#:ktap_test:" attribute newer KUnit prints instead.
const (
	subtestHeader  = "# Subtest:"
	ktapTestHeader = "#:ktap_test:"
)

var (
	versionRE = regexp.MustCompile(`^(K?TAP) version (\d+)$`)
	planRE    = regexp.MustCompile(`^1\.\.(\d+)(\s*#.*)?$`)
	resultRE  = regexp.MustCompile(`^(ok|not ok)\s+(\d+)(?:\s+(.*))?$`)
)

// A line is one line of input split into its indentation and text.
type line struct {
	indent int
	text   string
}

// kind is what a line is to the structure.
type kind int

const (
	kindOther kind = iota
	kindVersion
	kindPlan
	kindResult
	kindSubtest
)

func classify(text string) kind {
	switch {
	case versionRE.MatchString(text):
		return kindVersion
	case planRE.MatchString(text):
		return kindPlan
	case resultRE.MatchString(text):
		return kindResult
	case strings.HasPrefix(text, subtestHeader), strings.HasPrefix(text, ktapTestHeader):
		return kindSubtest
	}
	return kindOther
}

// indentOf measures leading white space, a tab as eight columns (KUnit
// of 5.x indents with tabs, later ones with spaces).
func indentOf(s string) (int, string) {
	n := 0
	for i, c := range s {
		switch c {
		case ' ':
			n++
		case '\t':
			n += 8 - n%8
		default:
			return n, s[i:]
		}
	}
	return n, ""
}

// Parse reads a KTAP or TAP output. It returns an error only for input
// that holds no result line, plan or version line at all: anything else
// is a Document, with Problems when its structure is broken.
func Parse(text string) (*Document, error) {
	var lines []line
	found := false
	for _, raw := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		n, t := indentOf(strings.TrimRight(raw, " \t\r"))
		lines = append(lines, line{n, t})
		if classify(t) != kindOther {
			found = true
		}
	}
	for len(lines) > 0 && lines[len(lines)-1].text == "" {
		lines = lines[:len(lines)-1]
	}
	if !found {
		return nil, fmt.Errorf("no KTAP: no version line, plan or result line (want lines such as %q)", "ok 1 name")
	}
	p := &parser{lines: lines}
	top := p.level(minIndent(lines))
	d := &Document{Version: top.version, Plan: top.plan, Tests: top.tests, Diagnostics: top.diags}
	d.Problems = append(p.problems, top.problems("top level")...)
	return d, nil
}

// minIndent is the indentation of the least indented structured line:
// the top level (KUnit's debugfs files of 5.x indent everything but the
// suite's own result).
func minIndent(lines []line) int {
	n := -1
	for _, l := range lines {
		if classify(l.text) != kindOther && (n < 0 || l.indent < n) {
			n = l.indent
		}
	}
	return max(n, 0)
}

type parser struct {
	lines    []line
	pos      int
	problems []string
}

// A block is one level of tests being read.
type block struct {
	indent  int
	version string
	name    string // from "# Subtest:"
	plan    int
	tests   []*Test
	// diags are the lines since the last result line; pending the
	// subtests read since then, for the next result line.
	diags   []string
	pending *block
}

// problems checks the block's plan against its results.
func (b *block) problems(where string) []string {
	var out []string
	if b.plan >= 0 && b.plan != len(b.tests) {
		out = append(out, fmt.Sprintf("%s: plan 1..%d but %d result line(s): a test stopped before it printed its result", where, b.plan, len(b.tests)))
	}
	return out
}

// level reads lines at indentation indent until a structured line less
// indented than it, or the end.
func (p *parser) level(indent int) *block {
	b := &block{indent: indent, plan: -1}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		k := classify(l.text)
		switch {
		case k != kindOther && l.indent < indent:
			p.flush(b)
			return b
		case k != kindOther && l.indent > indent:
			sub := p.level(l.indent)
			p.adopt(b, sub)
			continue
		}
		p.pos++
		switch k {
		case kindVersion:
			if b.version == "" && len(b.tests) == 0 {
				b.version = l.text
				continue
			}
			b.diags = append(b.diags, l.text)
		case kindPlan:
			if b.plan < 0 && len(b.tests) == 0 {
				m := planRE.FindStringSubmatch(l.text)
				b.plan, _ = strconv.Atoi(m[1])
				continue
			}
			b.diags = append(b.diags, l.text)
		case kindSubtest:
			if b.name == "" && len(b.tests) == 0 {
				name := strings.TrimPrefix(strings.TrimPrefix(l.text, subtestHeader), ktapTestHeader)
				b.name = strings.TrimSpace(name)
				continue
			}
			b.diags = append(b.diags, diagText(l.text))
		case kindResult:
			b.tests = append(b.tests, p.result(b, l.text))
		default:
			if msg, ok := strings.CutPrefix(l.text, "Bail out!"); ok {
				// TAP's abort: kselftests print it when they give up.
				p.problems = append(p.problems, "bailed out:"+msg)
			}
			if sub := p.prefixed(l.text); sub != nil {
				p.adopt(b, sub)
				continue
			}
			b.diags = append(b.diags, diagText(l.text))
		}
	}
	p.flush(b)
	return b
}

// adopt keeps sub's tests for b's next result line. A block that
// already waits for its result (a block with no result line of its own)
// gives its tests to b, and the problem is noted.
func (p *parser) adopt(b *block, sub *block) {
	if b.pending != nil {
		p.problems = append(p.problems, fmt.Sprintf("subtests %s have no result line of their own", names(b.pending.tests)))
		b.tests = append(b.tests, b.pending.tests...)
	}
	b.pending = sub
}

// flush ends b: subtests still waiting for a result line become b's own
// tests (their parent never printed its result), with a problem.
func (p *parser) flush(b *block) {
	if b.pending == nil {
		return
	}
	where := "subtests " + names(b.pending.tests)
	if b.pending.name != "" {
		where = fmt.Sprintf("subtest %q", b.pending.name)
	}
	p.problems = append(p.problems, where+": no result line after them: the test stopped before it finished")
	p.problems = append(p.problems, b.pending.problems(where)...)
	b.tests = append(b.tests, b.pending.tests...)
	b.diags = append(b.pending.diags, b.diags...)
	b.pending = nil
}

func names(tests []*Test) string {
	var out []string
	for _, t := range tests {
		out = append(out, strconv.Quote(t.Name))
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, ", ")
}

// result makes the test of a result line, with b's diagnostics and its
// pending subtests.
func (p *parser) result(b *block, text string) *Test {
	m := resultRE.FindStringSubmatch(text)
	t := &Test{OK: m[1] == "ok", Plan: -1}
	t.Number, _ = strconv.Atoi(m[2])
	desc, directive, hasHash := strings.Cut(m[3], "#")
	t.Name = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(desc), "- "))
	if t.Name == "-" {
		t.Name = ""
	}
	if hasHash {
		t.Directive, t.Reason = splitDirective(strings.TrimSpace(directive))
	}
	t.Status = status(t.OK, t.Directive)
	t.Diagnostics, b.diags = b.diags, nil
	if want := len(b.tests) + 1; t.Number != want {
		p.problems = append(p.problems, fmt.Sprintf("test %q has number %d, want %d", t.Name, t.Number, want))
	}
	if sub := b.pending; sub != nil {
		b.pending = nil
		t.Subtests, t.Plan = sub.tests, sub.plan
		// The subtests' lines after their last result belong to
		// this test too.
		t.Diagnostics = append(sub.diags, t.Diagnostics...)
		where := fmt.Sprintf("subtests of %q", t.Name)
		p.problems = append(p.problems, sub.problems(where)...)
		if sub.name != "" && t.Name == "" {
			t.Name = sub.name
		}
	}
	return t
}

// splitDirective splits "SKIP reason" into its directive and reason;
// text without a known directive is all reason.
func splitDirective(s string) (string, string) {
	word, rest, _ := strings.Cut(s, " ")
	switch d := strings.ToUpper(word); d {
	case DirectiveSkip, DirectiveTodo, DirectiveXfail, DirectiveTimeout, DirectiveError:
		return d, strings.TrimSpace(rest)
	}
	return "", s
}

func status(ok bool, directive string) string {
	switch directive {
	case DirectiveSkip:
		return StatusSkip
	case DirectiveTodo:
		if !ok {
			return StatusSkip
		}
	case DirectiveTimeout, DirectiveError:
		return StatusFail
	}
	if ok {
		return StatusPass
	}
	return StatusFail
}

// diagText removes a diagnostic line's "# ".
func diagText(s string) string {
	if t, ok := strings.CutPrefix(s, "# "); ok {
		return t
	}
	if s == "#" {
		return ""
	}
	return s
}

// prefixed reads a TAP document whose lines are prefixed "# " (the
// kselftest runner's way of nesting a test's own TAP), starting at the
// line before p.pos, which must be "# TAP version N" or "# KTAP version
// N". It returns nil for any other line.
func (p *parser) prefixed(text string) *block {
	inner, ok := strings.CutPrefix(text, "# ")
	if !ok || classify(inner) != kindVersion {
		return nil
	}
	start := p.pos - 1
	end := p.pos
	for end < len(p.lines) && strings.HasPrefix(p.lines[end].text, "#") && p.lines[end].indent == p.lines[start].indent {
		end++
	}
	var b strings.Builder
	for _, l := range p.lines[start:end] {
		b.WriteString(diagText(l.text))
		b.WriteByte('\n')
	}
	doc, err := Parse(b.String())
	if err != nil {
		return nil
	}
	p.pos = end
	p.problems = append(p.problems, doc.Problems...)
	return &block{version: doc.Version, plan: doc.Plan, tests: doc.Tests, diags: doc.Diagnostics}
}
