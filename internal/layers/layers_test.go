package layers

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

const module = "github.com/kmodtest/kmodtest/"

// layers lists the repository's packages from the bottom up. A package
// may import packages of its own layer and of the layers below it.
var layers = []struct {
	name     string
	packages []string
}{
	{"leaf utilities", []string{"internal/arch", "internal/atomicfile", "internal/cachefs", "internal/proc", "internal/userpath", "internal/testenv"}},
	{"contract and protocol", []string{"contract", "greet/rawnl", "greet", "ktap"}},
	{"guest libraries", []string{"guest/kernelio", "guest/rawgreet", "guest/testcmd"}},
	{"archive, images, Kbuild, module projects", []string{"debian", "bootimage", "kbuild", "project", "modinfo"}},
	{"kernels, VMs, verdicts", []string{"kernels", "vm", "verdict", "initramfs", "coverage", "runresults"}},
	{"orchestration", []string{"harness", "check"}},
	{"command, its features and guest programs", []string{"cmd/kmodtest/watch", "cmd/kmodtest/shell", "results", "compare", "shard", "cmd/kmodtest", "guest/prober"}},
	{"VM tests and checks of the repository", []string{"vmtests", "internal/workflow", "internal/layers"}},
}

// layerOf returns the index of pkg's layer (a path relative to the
// module), or -1.
func layerOf(pkg string) int {
	for i, l := range layers {
		if slices.Contains(l.packages, pkg) {
			return i
		}
	}
	return -1
}

// TestLayers lists every package's imports with go list and fails on an
// arrow that points up, naming it, and on a package without a layer.
func TestLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-f",
		"{{.ImportPath}}|{{join .Imports \" \"}}|{{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "./...")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	arrows := parse(string(out))
	if len(arrows) == 0 {
		t.Fatal("go list listed no imports")
	}
	for _, p := range check(arrows) {
		t.Error(p)
	}
}

// An arrow is one import: from imports to; test is set for imports of
// the package's tests only.
type arrow struct {
	from, to string
	test     bool
}

// parse reads go list's lines (path|imports|test imports) into arrows
// between the module's packages, relative to the module.
func parse(out string) []arrow {
	var arrows []arrow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			continue
		}
		from := strings.TrimPrefix(f[0], module)
		arrows = append(arrows, arrow{from: from, to: from}) // every package is checked for a layer
		for i, list := range f[1:] {
			for _, imp := range strings.Fields(list) {
				if to, ok := strings.CutPrefix(imp, module); ok && to != from {
					arrows = append(arrows, arrow{from: from, to: to, test: i == 1})
				}
			}
		}
	}
	return arrows
}

// check returns a problem for each arrow that points to a higher layer,
// and for each package without one.
func check(arrows []arrow) []string {
	var problems []string
	for _, a := range arrows {
		lf, lt := layerOf(a.from), layerOf(a.to)
		switch {
		case lf < 0 && a.from == a.to:
			problems = append(problems, fmt.Sprintf("package %s has no layer: add it to the layers of internal/layers/layers_test.go", a.from))
		case lf < 0 || lt < 0 || lt <= lf:
		case a.test:
			problems = append(problems, fmt.Sprintf("the tests of %s (%s) import %s (%s), a higher layer", a.from, layers[lf].name, a.to, layers[lt].name))
		default:
			problems = append(problems, fmt.Sprintf("%s (%s) imports %s (%s), a higher layer: %s -> %s points up", a.from, layers[lf].name, a.to, layers[lt].name, a.from, a.to))
		}
	}
	return problems
}

// TestCheckFindsArrowsUp shows the check can fail: a leaf utility that
// imports the harness, and a package with no layer, are reported.
func TestCheckFindsArrowsUp(t *testing.T) {
	got := check(parse(module + "internal/proc|" + module + "harness|\n" + module + "newpkg||\n"))
	want := []string{
		"internal/proc (leaf utilities) imports harness (orchestration), a higher layer: internal/proc -> harness points up",
		"package newpkg has no layer: add it to the layers of internal/layers/layers_test.go",
	}
	if !slices.Equal(got, want) {
		t.Errorf("check:\n- want %q\n- got  %q", want, got)
	}
}
