package results

import (
	"io"
	"testing"
)

// BenchmarkMerge is kmodtest merge's work on the four real shards of
// testdata: read them, and write the table, JUnit and the page.
func BenchmarkMerge(b *testing.B) {
	for b.Loop() {
		r, err := Load("testdata/shards")
		if err != nil {
			b.Fatal(err)
		}
		_ = r.Text()
		if err := r.JUnit(io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := r.HTML(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
