package coverage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

func TestGcovTool(t *testing.T) {
	for cc, want := range map[string]string{
		"gcc-12": "gcov-12", "gcc": "gcov", "x86_64-linux-gnu-gcc-14": "x86_64-linux-gnu-gcov-14",
		"/usr/bin/gcc-16": "/usr/bin/gcov-16", "clang": "gcov",
	} {
		if got := GcovTool(cc); got != want {
			t.Errorf("GcovTool(%q) = %q, want %q", cc, got, want)
		}
	}
}

// TestGenerate runs the real gcov on a program built with --coverage, as
// the module is, and checks the summary, the unrun lines and the
// tracefile.
func TestGenerate(t *testing.T) {
	dir := buildProgram(t)
	gcda := runProgram(t, dir)
	res, err := Generate(context.Background(), "gcov-12", dir, map[string][]byte{"/sys/kernel/debug/gcov/x/m.gcda": gcda}, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Summary(), "lines 5/6 (83.3%), branches 1/2 (50.0%)"; !strings.HasPrefix(got, "lines 5/6") || !strings.Contains(got, "branches 1/2") {
		t.Errorf("summary %q, want %q", got, want)
	}
	unrun := res.Unrun()
	if len(unrun) != 1 || unrun[0] != "m.c:4: return 2;" {
		t.Errorf("unrun lines %q, want [m.c:4: return 2;]", unrun)
	}
	info, err := os.ReadFile(res.Tracefile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SF:" + filepath.Join(dir, "m.c"), "DA:4,0", "LF:6", "LH:5"} {
		if !strings.Contains(string(info), want+"\n") {
			t.Errorf("tracefile lacks %q:\n%s", want, info)
		}
	}
	if res.HTML != "" {
		if _, err := os.Stat(res.HTML); err != nil {
			t.Errorf("HTML page: %v", err)
		}
	}
}

// buildProgram builds a small C program with gcc-12 --coverage, as the
// module is built with gcov profiling, in a new directory.
func buildProgram(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, "gcc-12")
	dir := t.TempDir()
	src := "int f(int x)\n{\n\tif (x > 1)\n\t\treturn 2;\n\treturn 3;\n}\n\nint main(int c, char **v)\n{\n\treturn f(c) == 3 ? 0 : 1;\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "m.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("gcc-12", "--coverage", "-o", "m", "m.c")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	return dir
}

// runProgram runs the program with args and returns its .gcda as it
// then stands: each run adds its counts to it.
func runProgram(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	run := exec.Command("./m", args...)
	run.Dir = dir
	_ = run.Run() // exits 1 with arguments
	gcda, err := os.ReadFile(filepath.Join(dir, "m.gcda"))
	if err != nil {
		t.Fatal(err)
	}
	return gcda
}
