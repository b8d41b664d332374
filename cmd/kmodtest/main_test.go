package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// kmodtest runs the command line args and returns the exit status and
// what it wrote.
func kmodtest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = run(context.Background(), &cliEnv{stdout: &out, stderr: &errw}, args)
	return code, out.String(), errw.String()
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("KMODTEST_CACHE", t.TempDir())
	t.Setenv("KMODTEST_MATRIX", "")
	tests := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{nil, 2, "no command given"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"cache"}, 2, "no action given: want list, fetch, path, clean or prune"},
		{[]string{"cache", "bogus"}, 2, `unknown action "bogus"`},
		{[]string{"cache", "fetch", "-kernels", "9.9"}, 2, `-kernels: unknown kernel "9.9": the matrix (the built-in kernels/matrix.json) has`},
		{[]string{"cache", "fetch", "6.1"}, 2, `unexpected argument "6.1" after "fetch"`},
		{[]string{"cache", "-bogus", "list"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"cache", "list", "-n"}, 2, "-n applies to clean and prune"},
		{[]string{"help", "bogus"}, 2, `unknown command "bogus"`},
		{[]string{"check"}, 2, "give one project directory, got 0 arguments"},
		{[]string{"check", "-format", "html", "."}, 2, `-format "html": want text or markdown`},
		{[]string{"check", "-kernels", "9.9", "."}, 2, `unknown kernel "9.9"`},
		{[]string{"check", "../../check/testdata/projects/bad-syntax"}, 1, "bad-syntax/dkms.conf: line 6: syntax error: unexpected end of file: fix the shell syntax"},
		{[]string{"check", "../../harness/testdata"}, 1, "has no dkms.conf, kmodtest.json, Kbuild or Makefile"},
		{[]string{"compare", "../../compare/testdata/6.1.json"}, 2, "want two runs, OLD and NEW"},
		{[]string{"compare", "../../compare/testdata", "../../compare/testdata/6.1.json"}, 2, "no results.json in it: give a run's artifacts directory"},
		{[]string{"compare", "../../compare/testdata/6.1.json", "../../compare/testdata/6.1-slow-ack.json"}, 1, "new is worse than old:\n  6.1: round trip 5004% slower relative to the kernel's (ratio 1.05 -> 53.75)\n  6.1: step round-trip pass -> fail"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := kmodtest(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}} {
		code, stdout, _ := kmodtest(t, args...)
		if code != 0 || !strings.Contains(stdout, "cache ") || !strings.Contains(stdout, "kmodtest help <command>") {
			t.Errorf("kmodtest %s: exit %d\n%s", args, code, stdout)
		}
	}
	for _, args := range [][]string{{"help", "cache"}, {"cache", "-h"}, {"cache", "clean", "-h"}} {
		code, stdout, _ := kmodtest(t, args...)
		if code != 0 || !strings.Contains(stdout, "usage: kmodtest cache list|fetch|path|clean|prune") {
			t.Errorf("kmodtest %s: exit %d\n%s", args, code, stdout)
		}
	}
}

// fakeCache writes a cache holding entries of 6.1, 6.12, 5.10 and 7.3
// and returns its directory.
func fakeCache(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	if err := cachefs.Claim(dir); err != nil {
		t.Fatal(err)
	}
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{
		"kernels/6.1-9c5ececb278f/tree/vmlinuz",
		"kernels/6.12-0123456789ab/tree/vmlinuz",
		"apt/6.1-9c5ececb278f/lists/x",
		"modules/6.1-8e0a3f645f18b4cfd744bd3b/hello.ko",
		"modules/6.12-8e0a3f645f18b4cfd744bd3b/hello.ko",
		"roots/bullseye-aaaaaaaaaaaa/root/usr/bin/make",
		"roots/trixie-bbbbbbbbbbbb/root/usr/bin/make",
		"initramfs/base-1451c267c4ea25b3/base.cpio",
	} {
		write(rel, strings.Repeat("x", 1<<20))
	}
	write("kernels/6.1-9c5ececb278f/manifest.json", `{"release": "6.1.0-56-amd64"}`)
	write("vmlinux/1732895d67408318/vmlinux.elf", "ELF")
	write("vmlinux/1732895d67408318/manifest.json", `{"owner": "6.1"}`)
	write("vmlinux/2222222222222222/manifest.json", `{"owner": "6.12"}`)
	write("locks/kernel-6.1-9c5ececb278f.lock", "")
	return dir
}

func exists(dir, rel string) bool {
	_, err := os.Stat(filepath.Join(dir, rel))
	return err == nil
}

func TestCacheCleanHonoursSelection(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	dir := fakeCache(t)
	t.Setenv("KMODTEST_CACHE", dir)

	code, stdout, stderr := kmodtest(t, "cache", "clean", "-n", "-kernels", "6.1")
	if code != 0 || !strings.Contains(stdout, "would remove 4 entries, 3.0 MB") {
		t.Fatalf("clean -n -kernels 6.1: exit %d\n%s%s", code, stdout, stderr)
	}
	if !exists(dir, "kernels/6.1-9c5ececb278f") {
		t.Fatal("clean -n removed something")
	}

	code, stdout, stderr = kmodtest(t, "cache", "clean", "-kernels", "6.1")
	if code != 0 || !strings.Contains(stdout, "removed 3.0 MB of 3.0 MB") || !strings.Contains(stdout, filepath.Join(dir, "modules/6.1-8e0a3f645f18b4cfd744bd3b")) {
		t.Fatalf("clean -kernels 6.1: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, gone := range []string{"kernels/6.1-9c5ececb278f", "apt/6.1-9c5ececb278f", "modules/6.1-8e0a3f645f18b4cfd744bd3b", "vmlinux/1732895d67408318"} {
		if exists(dir, gone) {
			t.Errorf("clean -kernels 6.1 left %s", gone)
		}
	}
	for _, kept := range []string{"kernels/6.12-0123456789ab", "modules/6.12-8e0a3f645f18b4cfd744bd3b", "vmlinux/2222222222222222",
		"roots/bullseye-aaaaaaaaaaaa", "roots/trixie-bbbbbbbbbbbb", "initramfs/base-1451c267c4ea25b3", cachefs.MarkerName} {
		if !exists(dir, kept) {
			t.Errorf("clean -kernels 6.1 removed %s", kept)
		}
	}

	// 5.10 alone uses the bullseye root; 6.12 shares trixie with 7.3.
	kmodtest(t, "cache", "clean", "-kernels", "5.10,7.3")
	if exists(dir, "roots/bullseye-aaaaaaaaaaaa") || !exists(dir, "roots/trixie-bbbbbbbbbbbb") {
		t.Errorf("clean -kernels 5.10,7.3: want the bullseye root gone and the trixie root (6.12 uses it) kept")
	}

	code, stdout, _ = kmodtest(t, "cache", "clean")
	if code != 0 {
		t.Fatalf("clean: exit %d\n%s", code, stdout)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	for _, p := range left {
		if !strings.HasPrefix(p, filepath.Join(dir, "locks")) {
			t.Errorf("clean left %s", p)
		}
	}
	if !exists(dir, cachefs.MarkerName) {
		t.Error("clean removed the marker")
	}
}

// TestCacheCleanSparesForeignDirectory is KMODTEST_CACHE=$HOME/.cache:
// the directory holds the user's other caches, so clean must refuse.
func TestCacheCleanSparesForeignDirectory(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	dotcache := filepath.Join(t.TempDir(), ".cache")
	os.MkdirAll(filepath.Join(dotcache, "kernels"), 0o755)
	foreign := filepath.Join(dotcache, "mozilla", "profile.db")
	os.MkdirAll(filepath.Dir(foreign), 0o755)
	os.WriteFile(foreign, []byte("precious"), 0o644)
	t.Setenv("KMODTEST_CACHE", dotcache)

	for _, args := range [][]string{{"cache", "clean"}, {"cache", "clean", "-kernels", "6.1"}, {"cache", "prune"}} {
		code, _, stderr := kmodtest(t, args...)
		if code != 1 || !strings.Contains(stderr, "holds files kmodtest did not create (mozilla)") || !strings.Contains(stderr, "nothing was removed") {
			t.Errorf("kmodtest %s: exit %d, stderr:\n%s\nwant exit 1 and a refusal naming mozilla", args, code, stderr)
		}
	}
	if data, err := os.ReadFile(foreign); err != nil || string(data) != "precious" {
		t.Fatalf("the foreign file did not survive: %q, %v", data, err)
	}
	if !exists(dotcache, "kernels") {
		t.Fatal("clean removed something from a directory kmodtest does not own")
	}
}

func TestCacheListAndPath(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	dir := fakeCache(t)
	t.Setenv("KMODTEST_CACHE", dir)
	code, stdout, _ := kmodtest(t, "cache", "path")
	if code != 0 || stdout != dir+"\n" {
		t.Fatalf("cache path: exit %d, %q", code, stdout)
	}
	code, stdout, _ = kmodtest(t, "cache", "list", "-kernels", "6.1,7.2")
	if code != 0 || !strings.Contains(stdout, "6.1.0-56-amd64, 3.0 MB") || !strings.Contains(stdout, "no\n") {
		t.Fatalf("cache list: exit %d\n%s", code, stdout)
	}
}
