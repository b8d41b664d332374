package userpath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

// TestResolveUnderGoTest runs `go test` on this package from the
// repository root, as a user would: inside it, the test binary works in
// internal/userpath, yet "bzImage" must resolve to the root's bzImage.
func TestResolveUnderGoTest(t *testing.T) {
	if os.Getenv("KMODTEST_USERPATH_PRINT") == "1" {
		got, err := Resolve("bzImage")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("RESOLVED=%s\n", got)
		return
	}
	root := testenv.RepoRoot(t)
	cmd := testenv.GoTest(t, root, []string{"KMODTEST_USERPATH_PRINT=1"}, "-count=1", "-v", "-run", "^TestResolveUnderGoTest$", "./internal/userpath")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test: %v\n%s", err, out)
	}
	want := "RESOLVED=" + filepath.Join(root, "bzImage") + "\n"
	if !strings.Contains(string(out), want) {
		t.Fatalf("go test started in %s:\n- want %s- got\n%s", root, want, out)
	}
}

func TestResolveAbsoluteAndEmpty(t *testing.T) {
	for _, p := range []string{"", "/boot/vmlinuz"} {
		if got, err := Resolve(p); err != nil || got != p {
			t.Errorf("Resolve(%q) = %q, %v; want it unchanged", p, got, err)
		}
	}
}

func TestIsGoCommand(t *testing.T) {
	for exe, want := range map[string]bool{
		"/usr/lib/go-1.26/bin/go":                   true,
		"/root/sdk/go1.26.0/bin/go (deleted)":       true,
		"/usr/bin/bash":                             false,
		"/tmp/go-build123/b001/vmtests.test":        false,
		"/home/u/go/pkg/mod/golang.org/toolchain/x": false,
	} {
		if got := isGoCommand(exe); got != want {
			t.Errorf("isGoCommand(%q) = %v, want %v", exe, got, want)
		}
	}
}
