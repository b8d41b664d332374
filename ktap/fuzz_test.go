package ktap

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds the parser arbitrary text: it must not panic, and what
// Write prints of any document must parse back into the same tests.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil && !strings.HasSuffix(name, ".md") {
			f.Add(string(data))
		}
	}
	f.Add("KTAP version 1\n1..1\n  # Subtest: a\n  ok 1 b # SKIP\nnot ok 1 a # TIMEOUT\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := Parse(text)
		if err != nil {
			return
		}
		var b strings.Builder
		if err := Write(&b, d); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b.String())
		if err != nil {
			t.Fatalf("Parse(Write()): %v\n%s", err, b.String())
		}
		if got, want := flatStatus(back), flatStatus(d); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %q\nwant %q\nwritten:\n%s", got, want, b.String())
		}
	})
}

// flatStatus lists every test's path and status, with names as Write
// cleans them.
func flatStatus(d *Document) []string {
	var out []string
	d.Walk(func(path []string, t *Test) {
		p := make([]string, len(path))
		for i, n := range path {
			p[i] = cleanName(n)
		}
		out = append(out, strings.Join(p, "/")+" "+t.Status)
	})
	return out
}
