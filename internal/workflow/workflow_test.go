package workflow

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/rhysd/actionlint"
)

func TestWorkflowsLint(t *testing.T) {
	files, err := filepath.Glob("../../.github/workflows/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no workflow under .github/workflows: CI would run nothing")
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatalf("create linter: %v", err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatalf("lint workflows: %v", err)
	}
	if len(errs) > 0 {
		t.Errorf("actionlint found %d problem(s):\n%s", len(errs), out.String())
	}
}

// TestLinterCatchesErrors shows the check can fail: a workflow with an
// undefined matrix key must be reported.
func TestLinterCatchesErrors(t *testing.T) {
	broken := []byte(`on: push
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - run: echo ${{ matrix.nope }}
`)
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint("broken.yml", broken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) == 0 {
		t.Fatal("actionlint accepted a workflow that uses an undefined matrix key")
	}
}
