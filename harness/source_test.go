package harness

import (
	"context"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/kernels"
)

func TestSelectBuiltSkipsUnbuiltDebugKernel(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	cache := &kernels.Cache{Dir: t.TempDir()}
	kept, notes, err := SelectBuilt(context.Background(), cache, matrix, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kept {
		if k.Source != nil {
			t.Errorf("unbuilt source kernel %s kept without opting in", k.Name)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "6.12-debug") || !strings.Contains(notes[0], "-debug-kernel") {
		t.Errorf("want one line naming 6.12-debug and -debug-kernel, got %q", notes)
	}
	for _, tc := range []struct {
		named []string
		optIn bool
	}{{[]string{"6.12-debug"}, false}, {nil, true}} {
		kept, notes, err := SelectBuilt(context.Background(), cache, matrix, tc.named, tc.optIn)
		if err != nil || len(kept) != len(matrix) || len(notes) != 0 {
			t.Errorf("named %v opt-in %v: want the whole matrix kept, got %d of %d, notes %q, %v", tc.named, tc.optIn, len(kept), len(matrix), notes, err)
		}
	}
}
