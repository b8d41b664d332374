package vmtests

import (
	"flag"
	"regexp"
	"strings"
	"testing"
)

// runsSubtest reports whether go test's -run pattern can select the
// subtest name of t. A suite builds its fixtures' modules up front, in
// parallel; with -run narrowed to one fixture, building the other twenty
// only loads the 2 cores of a laptop. It answers true whenever it is not
// sure, as go test's own matching decides in the end.
func runsSubtest(t *testing.T, name string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	levels := splitRun(f.Value.String())
	depth := strings.Count(t.Name(), "/") + 1 // the level of name
	if depth >= len(levels) {
		return true
	}
	re, err := regexp.Compile(levels[depth])
	if err != nil {
		return true
	}
	return re.MatchString(name)
}

// splitRun splits a -run pattern into its per-level patterns at the
// slashes outside brackets and parentheses, as go test does.
func splitRun(s string) []string {
	var levels []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case '\\':
			i++
		case '/':
			if depth == 0 {
				levels = append(levels, s[start:i])
				start = i + 1
			}
		}
	}
	return append(levels, s[start:])
}

func TestSplitRun(t *testing.T) {
	for pattern, want := range map[string]string{
		"TestFixtures":                        "TestFixtures",
		"TestFixtures/slow-ack":               "TestFixtures|slow-ack",
		"TestFixtures/(a|b/c)$":               "TestFixtures|(a|b/c)$",
		"TestArchFixtures/char/6.1-arm64":     "TestArchFixtures|char|6.1-arm64",
		`TestFixtures/[a/b]x\/y`:              `TestFixtures|[a/b]x\/y`,
		"TestModule|TestFixtures/no-reply$/x": "TestModule|TestFixtures|no-reply$|x",
	} {
		if got := strings.Join(splitRun(pattern), "|"); got != want {
			t.Errorf("splitRun(%q) = %q, want %q", pattern, got, want)
		}
	}
}
