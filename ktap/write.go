package ktap

import (
	"fmt"
	"io"
	"strings"
)

// Version1 is the version line Write prints.
const Version1 = "KTAP version 1"

// Write prints d as KTAP version 1: the version line, the plan, and each
// test's subtests (indented two more spaces, headed by a version line,
// "# Subtest: NAME" and their plan), its diagnostic lines and its result
// line. A test's Status decides its result: pass is "ok", fail "not ok",
// skip "ok ... # SKIP reason". A "#" in a name becomes "_" and a line
// break in a reason a space, since KTAP cannot hold them there.
func Write(w io.Writer, d *Document) error {
	var b strings.Builder
	b.WriteString(Version1 + "\n")
	fmt.Fprintf(&b, "1..%d\n", len(d.Tests))
	writeTests(&b, "", d.Tests)
	for _, l := range d.Diagnostics {
		writeDiag(&b, "", l)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write KTAP: %w", err)
	}
	return nil
}

func writeTests(b *strings.Builder, indent string, tests []*Test) {
	for i, t := range tests {
		if len(t.Subtests) > 0 {
			in := indent + "  "
			b.WriteString(in + Version1 + "\n")
			fmt.Fprintf(b, "%s# Subtest: %s\n", in, cleanName(t.Name))
			fmt.Fprintf(b, "%s1..%d\n", in, len(t.Subtests))
			writeTests(b, in, t.Subtests)
		}
		for _, l := range t.Diagnostics {
			writeDiag(b, indent, l)
		}
		word := "ok"
		if t.Status == StatusFail {
			word = "not ok"
		}
		fmt.Fprintf(b, "%s%s %d %s", indent, word, i+1, cleanName(t.Name))
		directive := t.Directive
		if t.Status == StatusSkip && directive == "" {
			directive = DirectiveSkip
		}
		reason := strings.Join(strings.Fields(t.Reason), " ")
		switch {
		case directive != "" && reason != "":
			fmt.Fprintf(b, " # %s %s", directive, reason)
		case directive != "":
			fmt.Fprintf(b, " # %s", directive)
		case reason != "":
			fmt.Fprintf(b, " # %s", reason)
		}
		b.WriteString("\n")
	}
}

// writeDiag writes one diagnostic line, split where it holds line breaks.
func writeDiag(b *strings.Builder, indent, text string) {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			b.WriteString(indent + "#\n")
			continue
		}
		if structural(l) {
			// A diagnostic that reads as a version line or a
			// subtest header would nest on reading: one more space
			// keeps it a diagnostic.
			l = " " + l
		}
		b.WriteString(indent + "# " + l + "\n")
	}
}

// structural reports whether a diagnostic's text, written after "# ",
// would be read as structure: a nested TAP's version line (kselftest's
// runner style), a result line inside it, or a subtest header.
func structural(text string) bool {
	return classify(text) != kindOther || classify("# "+text) == kindSubtest
}

// cleanName makes a name fit a result line: no "#", no line break, no
// leading "- " (TAP 14's separator) or white space at either end.
func cleanName(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "#", "_")), " ")
	if s == "-" || strings.HasPrefix(s, "- ") {
		s = "_" + s[1:]
	}
	return s
}
