package coverage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// A Snapshot is the module's gcov data as it stood at the end of one
// step. The kernel keeps a module's counts across unload and reload
// (gcov_persist=1), so each snapshot holds every count since the first
// load: what a step ran is its snapshot minus the one before.
type Snapshot struct {
	Step string
	// Gcda holds the .gcda files by guest path; nil when the step sent
	// none, and Missing then says why.
	Gcda    map[string][]byte
	Missing string
}

// A StepLines is what one step ran: the counts of its snapshot minus
// those of the last snapshot before it.
type StepLines struct {
	Step string
	// Missing says why the step has no snapshot. Its lines then count
	// for the next step that has one, which lists it in Earlier; Files
	// is nil.
	Missing string
	// Earlier are the steps right before this one that have no
	// snapshot: their lines are counted here, with this step's.
	Earlier []string
	// Reset says that counts fell since the previous snapshot (the
	// kernel did not keep them), so Files holds the snapshot's own
	// counts: what ran since they restarted.
	Reset bool
	// Files holds the counts of the step's lines (zero for lines it did
	// not run); nil when Missing is set.
	Files []File
}

// Label names the lines' steps: the step, preceded by the steps without
// a snapshot whose lines it holds ("a+b").
func (s StepLines) Label() string {
	return strings.Join(append(append([]string(nil), s.Earlier...), s.Step), "+")
}

// Steps is the per-step coverage of one run.
type Steps struct {
	Steps []StepLines
	// Text is steps.txt, Tracefile steps.info (one test per step), HTML
	// the index of steps-html/ made by genhtml --show-details (or "",
	// and HTMLNote says why). Tracefile is "" when no step has a snapshot.
	Text, Tracefile, HTML, HTMLNote string
}

// Step returns the lines of the named step.
func (s *Steps) Step(name string) (StepLines, bool) {
	for _, st := range s.Steps {
		if st.Step == name {
			return st, true
		}
	}
	return StepLines{}, false
}

// GenerateSteps computes what each step ran from the snapshots, in the
// order the steps ran, with the module's .gcno files and sources in
// notesDir, and writes steps.txt, steps.info and steps-html/ into outDir.
func GenerateSteps(ctx context.Context, gcov, notesDir string, snaps []Snapshot, outDir string) (*Steps, error) {
	cumulative := make([]StepLines, len(snaps))
	var g *gcovRunner
	for i, sn := range snaps {
		cumulative[i] = StepLines{Step: sn.Step, Missing: sn.Missing}
		if len(sn.Gcda) == 0 {
			if sn.Missing == "" {
				cumulative[i].Missing = "the step sent no gcov data"
			}
			continue
		}
		if g == nil {
			var err error
			if g, err = newGcovRunner(gcov, notesDir); err != nil {
				return nil, err
			}
			defer g.close()
		}
		files, err := g.run(ctx, sn.Gcda)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", sn.Step, err)
		}
		cumulative[i].Files = files
	}
	res := &Steps{Steps: Subtract(cumulative)}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	res.Text = filepath.Join(outDir, "steps.txt")
	if err := os.WriteFile(res.Text, []byte(res.text()), 0o644); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	info := res.lcov()
	if info == "" {
		res.HTMLNote = "no step sent gcov data"
		return res, nil
	}
	res.Tracefile = filepath.Join(outDir, "steps.info")
	desc := filepath.Join(outDir, "steps.desc")
	if err := os.WriteFile(res.Tracefile, []byte(info), 0o644); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	if err := os.WriteFile(desc, []byte(res.descriptions()), 0o644); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	res.HTML, res.HTMLNote = genhtml(ctx, filepath.Join(outDir, "steps-html"), res.Tracefile,
		"--show-details", "--description-file", desc)
	return res, nil
}

// Subtract turns cumulative counts (each step's Files as its snapshot
// read them) into what each step ran: its counts minus those of the last
// step before it with a snapshot. A step without a snapshot keeps
// Missing and its lines go to the next step with one (Earlier).
func Subtract(cumulative []StepLines) []StepLines {
	out := make([]StepLines, len(cumulative))
	var prev []File
	var earlier []string
	for i, c := range cumulative {
		out[i] = StepLines{Step: c.Step, Missing: c.Missing}
		if c.Files == nil {
			earlier = append(earlier, c.Step)
			continue
		}
		out[i].Earlier, earlier = earlier, nil
		out[i].Files, out[i].Reset = subtractFiles(c.Files, prev)
		prev = c.Files
	}
	return out
}

// subtractFiles returns cur minus prev, line by line and branch by
// branch (files by name, lines by number). If any count fell, the
// counts restarted: it returns cur itself and reset.
func subtractFiles(cur, prev []File) (diff []File, reset bool) {
	before := map[string]map[int]Line{}
	for _, f := range prev {
		lines := map[int]Line{}
		for _, l := range f.Lines {
			lines[l.Number] = l
		}
		before[f.Name] = lines
	}
	for _, f := range cur {
		d := File{Name: f.Name, Source: f.Source}
		for _, l := range f.Lines {
			p := before[f.Name][l.Number]
			n := Line{Number: l.Number, Count: l.Count - p.Count}
			for i, c := range l.Branches {
				if i < len(p.Branches) {
					c -= p.Branches[i]
				}
				n.Branches = append(n.Branches, c)
				reset = reset || c < 0
			}
			reset = reset || n.Count < 0
			d.Lines = append(d.Lines, n)
		}
		diff = append(diff, d)
	}
	if reset {
		return cur, true
	}
	return diff, false
}

// nonWord is what genhtml replaces with "_" in test names (with a
// warning): step names have dashes.
var nonWord = regexp.MustCompile(`\W`)

// testName is the tracefile's name for a step's lines.
func testName(s StepLines) string { return nonWord.ReplaceAllString(s.Label(), "_") }

// lcov renders one test (TN section) per step with a snapshot; "" when
// there is none.
func (s *Steps) lcov() string {
	var b strings.Builder
	for _, st := range s.Steps {
		if st.Files != nil {
			writeLcov(&b, testName(st), st.Files)
		}
	}
	return b.String()
}

// descriptions is genhtml's --description-file: the step behind each
// test name.
func (s *Steps) descriptions() string {
	var b strings.Builder
	for _, st := range s.Steps {
		if st.Files == nil {
			continue
		}
		fmt.Fprintf(&b, "TN: %s\nTD: step %s", testName(st), st.Step)
		if len(st.Earlier) > 0 {
			fmt.Fprintf(&b, ", with the lines of %s (no snapshot of their own)", strings.Join(st.Earlier, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// text is steps.txt: the lines each step ran, the steps that ran each
// line, and the lines a single step runs.
func (s *Steps) text() string {
	var b strings.Builder
	b.WriteString(`Per-step coverage of the module: which lines each step ran.
A step's lines are the module's gcov counts at the end of the step minus those
at the end of the step before (the kernel keeps counts across unload and
reload). Work the kernel does after a step ends (a namespace freed later, an
RCU callback) counts for the step during which it runs. Ranges span lines with
code: "69-93" means every line with code from 69 to 93.

== Lines each step ran
`)
	width := 0
	for _, st := range s.Steps {
		width = max(width, len(st.Step))
	}
	for i, st := range s.Steps {
		fmt.Fprintf(&b, "%-*s  %s\n", width, st.Step, stepSummary(s.Steps, i))
	}

	ran, order := s.stepsPerLine()
	if len(order) == 0 {
		return b.String()
	}
	var all []string // the labels of the steps with a snapshot
	for _, st := range s.Steps {
		if st.Files != nil {
			all = append(all, st.Label())
		}
	}
	b.WriteString(`
== Steps that ran each line
Each line of the module with code, then the steps that ran it and, for a line
with branches, the steps that took each branch outcome (gcov's numbering).
Error paths often have no line of their own: their branch stands for them.
`)
	var alone []string
	sources := map[string][]string{}
	for _, key := range order {
		if _, ok := sources[key.source]; !ok {
			sources[key.source] = sourceLines(key.source)
		}
		src := ""
		if text := sources[key.source]; key.line-1 < len(text) {
			src = strings.TrimSpace(text[key.line-1])
		}
		r := ran[key]
		fmt.Fprintf(&b, "%s:%d  %s\n    %s\n", key.name, key.line, src, stepList(r.steps, all))
		if len(r.steps) == 1 {
			alone = append(alone, fmt.Sprintf("%s:%d  %s  %s", key.name, key.line, r.steps[0], src))
		}
		for i, took := range r.branches {
			fmt.Fprintf(&b, "    branch %d: %s\n", i, stepList(took, all))
			if len(took) == 1 && len(r.steps) > 1 {
				alone = append(alone, fmt.Sprintf("%s:%d branch %d  %s  %s", key.name, key.line, i, took[0], src))
			}
		}
	}
	b.WriteString("\n== Lines and branches only one step runs (that step alone guards them)\n")
	if len(alone) == 0 {
		b.WriteString("none\n")
	}
	for _, a := range alone {
		b.WriteString(a + "\n")
	}
	return b.String()
}

// stepList names the steps in some, a subset of all: "never" for none,
// "every step but ..." when that is shorter.
func stepList(some, all []string) string {
	switch {
	case len(some) == 0:
		return "never"
	case len(some) == len(all):
		return "every step"
	case 2*len(some) > len(all):
		var rest []string
		for _, a := range all {
			if !slices.Contains(some, a) {
				rest = append(rest, a)
			}
		}
		return "every step but " + strings.Join(rest, " ")
	}
	return strings.Join(some, " ")
}

// stepSummary is steps[i]'s line in steps.txt.
func stepSummary(steps []StepLines, i int) string {
	st := steps[i]
	if st.Files == nil {
		for _, next := range steps[i+1:] {
			if next.Files != nil {
				return fmt.Sprintf("no snapshot (%s): its lines count for %s", st.Missing, next.Step)
			}
		}
		return fmt.Sprintf("no snapshot (%s), nor any later step: its lines are unknown", st.Missing)
	}
	var parts []string
	lines, total := 0, 0
	for _, f := range st.Files {
		total += len(f.Lines)
		if r := ranges(f.Lines); r != "" {
			parts = append(parts, f.Name+" "+r)
		}
		for _, l := range f.Lines {
			if l.Count > 0 {
				lines++
			}
		}
	}
	text := "no line of the module"
	if lines > 0 {
		text = fmt.Sprintf("%s (%d of %d lines)", strings.Join(parts, "; "), lines, total)
	}
	if len(st.Earlier) > 0 {
		text += fmt.Sprintf(", with the lines of %s (no snapshot)", strings.Join(st.Earlier, ", "))
	}
	if st.Reset {
		text += "; counts fell since the snapshot before (the kernel did not keep them): these are the lines run since they restarted"
	}
	return text
}

// ranges writes the lines that ran as ranges of consecutive lines with
// code ("69-93, 101"); "" when none ran.
func ranges(lines []Line) string {
	var out []string
	for i := 0; i < len(lines); i++ {
		if lines[i].Count == 0 {
			continue
		}
		j := i
		for j+1 < len(lines) && lines[j+1].Count > 0 {
			j++
		}
		if j == i {
			out = append(out, fmt.Sprint(lines[i].Number))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", lines[i].Number, lines[j].Number))
		}
		i = j
	}
	return strings.Join(out, ", ")
}

// A lineKey is one line with code of one file.
type lineKey struct {
	name, source string
	line         int
}

// lineSteps are the labels of the steps that ran a line, and of those
// that took each of its branch outcomes.
type lineSteps struct {
	steps    []string
	branches [][]string
}

// stepsPerLine returns, for every line with code, the steps that ran it
// and took its branches, and the lines in file and line order.
func (s *Steps) stepsPerLine() (map[lineKey]*lineSteps, []lineKey) {
	ran := map[lineKey]*lineSteps{}
	var order []lineKey
	for _, st := range s.Steps {
		for _, f := range st.Files {
			for _, l := range f.Lines {
				key := lineKey{name: f.Name, source: f.Source, line: l.Number}
				r, ok := ran[key]
				if !ok {
					r = &lineSteps{branches: make([][]string, len(l.Branches))}
					ran[key] = r
					order = append(order, key)
				}
				if l.Count > 0 {
					r.steps = append(r.steps, st.Label())
				}
				for i, c := range l.Branches {
					if c > 0 && i < len(r.branches) {
						r.branches[i] = append(r.branches[i], st.Label())
					}
				}
			}
		}
	}
	return ran, order
}

// Lines returns the step's counts of the lines with code whose source
// holds text.
func (s StepLines) Lines(text string) []Line {
	var out []Line
	for _, f := range s.Files {
		src := sourceLines(f.Source)
		for _, l := range f.Lines {
			if l.Number-1 < len(src) && strings.Contains(src[l.Number-1], text) {
				out = append(out, l)
			}
		}
	}
	return out
}
