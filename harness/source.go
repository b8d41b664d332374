package harness

import (
	"context"
	"fmt"
	"slices"

	"github.com/kmodtest/kmodtest/kernels"
)

// DebugKernelEnv opts in to building the matrix's source kernels (the
// 6.12-debug sanitizer kernel), which takes minutes on 2 cores the
// first time (docs/performance.md). make test and CI set it.
const DebugKernelEnv = "KMODTEST_DEBUG_KERNEL"

// SelectBuilt drops the source kernels of selected that are not cached
// yet, unless optIn is set or the kernel was named explicitly (in named):
// a laptop's first `go test ./vmtests` must not silently start a long
// kernel build. For each one dropped it returns one line saying how to
// build it.
func SelectBuilt(ctx context.Context, cache *kernels.Cache, selected []kernels.Kernel, named []string, optIn bool) ([]kernels.Kernel, []string, error) {
	var kept []kernels.Kernel
	var notes []string
	for _, k := range selected {
		if k.Source == nil || optIn || slices.Contains(named, k.Name) {
			kept = append(kept, k)
			continue
		}
		ok, err := cache.SourceCached(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			kept = append(kept, k)
			continue
		}
		notes = append(notes, fmt.Sprintf("kernel %s is not built yet: skipped; build and run it with -debug-kernel or %s=1 (minutes of compiling the first time, cached afterwards)",
			k.Name, DebugKernelEnv))
	}
	return kept, notes, nil
}
