package kernels

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/kmodtest/kmodtest/kbuild"
)

const helloC = `// SPDX-License-Identifier: GPL-2.0
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/init.h>
#include <linux/module.h>

static int __init hello_init(void)
{
	pr_info("hello loaded\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("hello unloaded\n");
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest hello world");
`

// writeModule writes a one-file module named name into a new directory.
func writeModule(t *testing.T, name, source string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".c"), []byte(source), 0o644)
	os.WriteFile(filepath.Join(dir, "Kbuild"), []byte("obj-m := "+name+".o\n"), 0o644)
	return dir
}

// TestIntegrationFetchAndBuild downloads every kernel of the matrix (or
// those in KMODTEST_KERNELS) into the cache the VM tests use (see
// DefaultCacheDir) and builds a module for each, in parallel as the VM
// tests do. It is one of the tests testenv.NeedVMs turns on.
func TestIntegrationFetchAndBuild(t *testing.T) {
	testenv.NeedVMs(t)
	matrix, err := LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if s := os.Getenv("KMODTEST_KERNELS"); s != "" {
		names = strings.Split(s, ",")
	}
	sel, err := Select(matrix, names)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	hello := writeModule(t, "hello", helloC)
	broken := writeModule(t, "broken", strings.Replace(helloC, "return 0;", "return undeclared_thing;", 1))
	patch := filepath.Join(t.TempDir(), "p.diff")
	os.WriteFile(patch, []byte(`--- a/hello.c
+++ b/hello.c
@@ -7,3 +7,3 @@
 {
-	pr_info("hello loaded\n");
+	pr_info("hello patched\n");
 	return 0;
`), 0o644)

	for _, k := range sel {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			c := &Cache{Dir: dir, Logf: t.Logf}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
			defer cancel()
			if k.Source != nil {
				// A source kernel is a long one-time build, which the VM
				// tests do when asked (KMODTEST_DEBUG_KERNEL=1).
				if ok, err := c.SourceCached(ctx, k); err != nil || !ok {
					t.Skipf("source kernel %s is not built (%v): the VM tests build it with KMODTEST_DEBUG_KERNEL=1", k.Name, err)
				}
			}
			f, err := c.Fetch(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("fetched %s: cached=%v fetch=%v buildroot=%v", f.Release, f.Timings.Cached, f.Timings.Fetch, f.Timings.BuildRoot)
			mb, err := c.BuildModule(ctx, f, hello, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built %s in %v cached=%v warnings=%d", mb.Ko, mb.Duration, mb.Cached, len(mb.Warnings))
			if got := vermagic(t, mb.Ko); !strings.HasPrefix(got, f.Release+" ") {
				t.Errorf("unexpected vermagic:\n- want %s …\n- got  %s", f.Release, got)
			}
			again, err := c.BuildModule(ctx, f, hello, "")
			if err != nil || !again.Cached || again.Ko != mb.Ko {
				t.Errorf("second build: cached=%v ko=%v err=%v; want the cached %s", again != nil && again.Cached, again, err, mb.Ko)
			}
			patched, err := c.BuildModule(ctx, f, hello, patch)
			if err != nil {
				t.Fatal(err)
			}
			if patched.Ko == mb.Ko {
				t.Errorf("patched build reused the unpatched module")
			}
			_, err = c.BuildModule(ctx, f, broken, "")
			var be *kbuild.BuildError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), "undeclared_thing") {
				t.Errorf("broken module: want *kbuild.BuildError naming undeclared_thing, got %v", err)
			} else {
				t.Logf("broken module error:\n%v", err)
			}
		})
	}
}

// vermagic returns the module's vermagic string.
func vermagic(t *testing.T, ko string) string {
	t.Helper()
	f, err := elf.Open(ko)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		t.Fatalf("%s has no .modinfo", ko)
	}
	data, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, "vermagic="); ok {
			return v
		}
	}
	t.Fatalf("%s has no vermagic", ko)
	return ""
}
