package runresults

import (
	"fmt"
	"io"
	"strings"

	"github.com/kmodtest/kmodtest/ktap"
)

// KTAP returns the run as a KTAP document: one top-level test per target
// that is no fixture, named after it, with a subtest per step. A failed
// step carries its failure's lines as diagnostics, a skipped one its
// reason; a step that never finished is "not ok … # ERROR". The run's
// metadata and each target's kernel release follow as diagnostic lines.
func (r *Run) KTAP() *ktap.Document {
	d := &ktap.Document{Plan: -1}
	for _, t := range r.Targets {
		if t.Fixture != "" {
			continue
		}
		top := &ktap.Test{Name: t.Name, Status: ktapStatus(t.Status), Plan: -1}
		for _, s := range t.Steps {
			st := &ktap.Test{Name: s.Name, Status: ktapStatus(s.Status), Plan: -1, Diagnostics: s.Failure}
			switch s.Status {
			case StatusSkip:
				st.Directive, st.Reason = ktap.DirectiveSkip, s.SkipReason
			case StatusUnfinished:
				st.Directive, st.Reason = ktap.DirectiveError, "the step's test started and never finished (timeout, crash or cancelled job)"
			}
			top.Subtests = append(top.Subtests, st)
		}
		top.Diagnostics = append([]string{targetLine(t)}, t.Failure...)
		d.Tests = append(d.Tests, top)
	}
	d.Diagnostics = append(d.Diagnostics, r.about())
	return d
}

// WriteKTAP writes the run's KTAP document to w.
func (r *Run) WriteKTAP(w io.Writer) error {
	return ktap.Write(w, r.KTAP())
}

func ktapStatus(s string) string {
	switch s {
	case StatusPass:
		return ktap.StatusPass
	case StatusSkip:
		return ktap.StatusSkip
	}
	return ktap.StatusFail
}

// targetLine describes a target in one line.
func targetLine(t Target) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	add("kernel", t.Kernel)
	add("release", t.Release)
	add("arch", t.Arch)
	add("profile", t.Profile)
	add("cpu", t.CPU)
	add("guest", t.Guest)
	add("shard", t.Shard)
	return strings.Join(parts, ", ")
}

// about describes the run in one line: by what, when, where.
func (r *Run) about() string {
	s := "kmodtest"
	if r.Commit != "" {
		s += " " + r.Commit
	}
	if !r.Date.IsZero() {
		s += " on " + r.Date.UTC().Format("2006-01-02 15:04 UTC")
	}
	how := append([]string{r.Source}, r.QEMU...)
	if r.Accel != "" {
		how = append(how, "accelerator "+r.Accel)
	}
	return s + " (" + strings.Join(how, ", ") + ")"
}

// Markdown returns the kernels x steps table for a README ("tested
// on"): a row per target that is no fixture, with its kernel release, a
// column per step (pass, fail, skip, or - when the step did not run),
// a footnote per failure (its first line) and a line saying when and
// how the run was made.
func (r *Run) Markdown() string {
	steps := r.columns()
	var b strings.Builder
	fmt.Fprintf(&b, "| kernel | release | %s |\n", strings.Join(steps, " | "))
	fmt.Fprintf(&b, "|---|---|%s\n", strings.Repeat("---|", len(steps)))
	var notes []string
	for _, t := range r.Targets {
		if t.Fixture != "" {
			continue
		}
		release := t.Release
		if release != "" {
			release = "`" + release + "`"
		}
		name := t.Name
		if len(t.Failure) > 0 {
			notes = append(notes, fmt.Sprintf("%s: %s", t.Name, t.Failure[0]))
			name += fmt.Sprintf(" [%d]", len(notes))
		}
		fmt.Fprintf(&b, "| %s | %s |", name, release)
		for _, name := range steps {
			s, ok := t.Step(name)
			cell := "-"
			if ok {
				cell = s.Status
				if s.Failed() {
					cell = "**" + s.Status + "**"
					why := "no reason recorded"
					if len(s.Failure) > 0 {
						why = s.Failure[0]
					}
					notes = append(notes, fmt.Sprintf("%s, %s: %s", t.Name, name, why))
					cell += fmt.Sprintf(" [%d]", len(notes))
				}
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nTested by %s; `-`: the step did not run.\n", r.about())
	for i, n := range notes {
		fmt.Fprintf(&b, "\n[%d] %s\n", i+1, strings.ReplaceAll(n, "|", `\|`))
	}
	return b.String()
}

// columns are the steps of the table: the run's steps, then any a
// target has that the run did not list.
func (r *Run) columns() []string {
	cols := append([]string(nil), r.Steps...)
	seen := map[string]bool{}
	for _, c := range cols {
		seen[c] = true
	}
	for _, t := range r.Targets {
		for _, s := range t.Steps {
			if !seen[s.Name] {
				seen[s.Name] = true
				cols = append(cols, s.Name)
			}
		}
	}
	return cols
}
