package vmtests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestTwoRunsAtOnce runs go test ./vmtests twice at the same time in one
// checkout with one artifacts directory: each run must pass and keep its
// own files (issue 8: the second made the first fail 19 steps).
func TestTwoRunsAtOnce(t *testing.T) {
	tg := fixtureTarget(t, "default")
	root := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), "go", "test", "./vmtests", "-count=1", "-run", "^TestModule$", "-kernels", tg.Kernel.Name, "-artifacts-dir", root)
			cmd.Dir = env.Repo
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			errs[i] = cmd.Run()
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("run %d: %v\n%s", i+1, errs[i], outs[i].String())
		}
	}
	runs, err := filepath.Glob(filepath.Join(root, "runs", "*", tg.Name(), "console.log"))
	if err != nil || len(runs) != 2 {
		t.Errorf("want two runs with a console.log each, got %v (%v)", runs, err)
	}
	latest, err := os.Readlink(filepath.Join(root, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, latest, tg.Name(), "console.log")); err != nil {
		t.Errorf("latest -> %s holds no console.log: %v", latest, err)
	}
}
