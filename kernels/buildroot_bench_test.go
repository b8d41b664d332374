package kernels

import (
	"sort"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

// BenchmarkBuildRoot makes each build root of the matrix from nothing:
// the download and unpacking a cold cache pays once per root. Run it on
// an idle host; the network to the Debian mirror counts too:
//
//	KMODTEST_TOOL_TESTS=1 go test ./kernels -run '^$' -bench BuildRoot -benchtime 5x
func BenchmarkBuildRoot(b *testing.B) {
	testenv.NeedVMs(b)
	testenv.NeedTool(b, "mmdebstrap")
	matrix, err := LoadMatrix()
	if err != nil {
		b.Fatal(err)
	}
	roots := map[string]*BuildRoot{}
	for _, k := range matrix {
		if k.Root != nil {
			roots[k.Root.Name] = k.Root
		}
	}
	names := make([]string, 0, len(roots))
	for n := range roots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c := &Cache{Dir: b.TempDir()}
				if err := c.claim(); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ensureRoot(b.Context(), roots[name]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
