package kernels

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/proc"
)

func TestDebugEntry(t *testing.T) {
	k := debugEntry(t)
	if k.Source == nil || k.SMP < 2 || k.MemoryMB < 1024 {
		t.Fatalf("6.12-debug: want a source build with 2 vCPUs and 1 GiB, got %+v", k)
	}
	frag, err := k.Source.fragment()
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []string{"CONFIG_KASAN_INLINE=y", "CONFIG_DEBUG_KMEMLEAK=y", "CONFIG_PROVE_LOCKING=y",
		"CONFIG_DEBUG_ATOMIC_SLEEP=y", "CONFIG_KFENCE=y", "CONFIG_UBSAN=y", "CONFIG_FAILSLAB=y",
		"CONFIG_FAULT_INJECTION_DEBUG_FS=y", "CONFIG_GCOV_KERNEL=y", "CONFIG_NET_NS=y", "CONFIG_MODULE_UNLOAD=y"} {
		if !strings.Contains(string(frag), "\n"+opt+"\n") {
			t.Errorf("kernels/%s lacks %s", k.Source.Config, opt)
		}
	}
}

func TestSourceEntryErrors(t *testing.T) {
	base := `{"kernels": [{"name": "d", "suite": "bookworm", "apt": ["deb {mirror} bookworm main"],
		"source": {"package": "linux-source-6.12", "config": "debug.config"}, "toolchain": "%s", "profiles": ["default"]}]}`
	if _, err := ParseMatrix([]byte(strings.Replace(base, "%s", "host", 1))); err != nil {
		t.Errorf("valid source entry rejected: %v", err)
	}
	_, err := ParseMatrix([]byte(strings.Replace(base, "%s", "trixie", 1)))
	if err == nil || !strings.Contains(err.Error(), "toolchain must be") {
		t.Errorf("source entry with a build root: want a toolchain error, got %v", err)
	}
	_, err = ParseMatrix([]byte(strings.Replace(strings.Replace(base, "%s", "host", 1), `"config": "debug.config"`, `"config": ""`, 1)))
	if err == nil || !strings.Contains(err.Error(), "source.config") {
		t.Errorf("source entry without config: want an error naming source.config, got %v", err)
	}
}

// TestStatusFindsSourceKernel: a built source kernel is listed as cached;
// its entry is named by the fragment and compiler, not by the apt lines.
func TestStatusFindsSourceKernel(t *testing.T) {
	if proc.NeedTool(hostCC) != nil {
		t.Skipf("%s is not installed", hostCC)
	}
	k := debugEntry(t)
	c := &Cache{Dir: t.TempDir()}
	if st := c.Status(t.Context(), k); st.Release != "" {
		t.Fatalf("empty cache: Status says %q is cached", st.Release)
	}
	key, err := sourceKey(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	fakeKernelEntry(t, filepath.Join(c.Dir, "kernels", key))
	if st := c.Status(t.Context(), k); st.Release == "" {
		t.Fatal("a built source kernel is listed as not cached")
	}
}

// debugEntry returns the built-in matrix's 6.12-debug entry.
func debugEntry(t *testing.T) Kernel {
	t.Helper()
	t.Setenv("KMODTEST_MATRIX", "")
	m, err := LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Select(m, []string{"6.12-debug"})
	if err != nil {
		t.Fatal(err)
	}
	return sel[0]
}
