package kernels

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// fakeKernelEntry writes a finished kernel entry as download would.
func fakeKernelEntry(t *testing.T, entry string) {
	t.Helper()
	kdir := filepath.Join(entry, "tree", "usr", "src", "linux-headers-1.0-amd64")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(kdir, "Makefile"), []byte("include /usr/src/linux-headers-1.0-common/Makefile\n"), 0o644)
	os.MkdirAll(filepath.Join(kdir, "include", "config"), 0o755)
	os.WriteFile(filepath.Join(kdir, "include", "config", "auto.conf"), []byte("CONFIG_CC_VERSION_TEXT=\""+fakeCCText+"\"\n"), 0o644)
	vmlinuz := filepath.Join(entry, "tree", "boot", "vmlinuz-1.0-amd64")
	os.MkdirAll(filepath.Dir(vmlinuz), 0o755)
	os.WriteFile(vmlinuz, []byte("not really a kernel"), 0o644)
	size, sum, err := cachefs.FileSHA256(vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	m := kernelManifest{Kernel: "1.0", Release: "1.0-amd64", Vmlinuz: "tree/boot/vmlinuz-1.0-amd64",
		VmlinuzSize: size, VmlinuzSHA256: sum, KDIR: "tree/usr/src/linux-headers-1.0-amd64",
		Version: "1.0-1", Created: time.Now().UTC()}
	if err := cachefs.WriteJSON(filepath.Join(entry, cachefs.ManifestName), m); err != nil {
		t.Fatal(err)
	}
}

func TestKernelManifestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		damage func(entry string)
		want   string
	}{
		{"intact", func(string) {}, ""},
		{"flipped byte", func(e string) {
			os.WriteFile(filepath.Join(e, "tree/boot/vmlinuz-1.0-amd64"), []byte("not really a kernEl"), 0o644)
		}, "tree/boot/vmlinuz-1.0-amd64 sha256 mismatch"},
		{"truncated", func(e string) {
			os.WriteFile(filepath.Join(e, "tree/boot/vmlinuz-1.0-amd64"), []byte("not"), 0o644)
		}, "tree/boot/vmlinuz-1.0-amd64 size 3, manifest says 19"},
		{"vmlinuz gone", func(e string) { os.Remove(filepath.Join(e, "tree/boot/vmlinuz-1.0-amd64")) }, "tree/boot/vmlinuz-1.0-amd64: no such file"},
		{"no manifest", func(e string) { os.Remove(filepath.Join(e, cachefs.ManifestName)) }, "no manifest"},
		{"bad manifest", func(e string) { os.WriteFile(filepath.Join(e, cachefs.ManifestName), []byte("{"), 0o644) }, "bad manifest"},
		{"kdir gone", func(e string) { os.RemoveAll(filepath.Join(e, "tree/usr")) }, "KDIR Makefile missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := filepath.Join(t.TempDir(), "1.0-abc")
			fakeKernelEntry(t, entry)
			tt.damage(entry)
			_, err := readKernelManifest(entry)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("intact entry rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("unexpected error:\n- want containing %q\n- got  %v", tt.want, err)
			}
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("corruption %v reported as a missing entry", err)
			}
		})
	}
	if _, err := readKernelManifest(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("absent entry: want ErrNotExist, got %v", err)
	}
}

func TestModuleManifestCorruption(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.ko"), []byte("ko"), 0o644)
	_, sum, _ := cachefs.FileSHA256(filepath.Join(dir, "hello.ko"))
	cachefs.WriteJSON(filepath.Join(dir, cachefs.ManifestName), moduleManifest{Kos: []string{"hello.ko"}, SHA256: []string{sum}})
	if _, err := readModuleManifest(dir); err != nil {
		t.Fatalf("intact module rejected: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "hello.ko"), []byte("kO"), 0o644)
	if _, err := readModuleManifest(dir); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("want sha256 mismatch, got %v", err)
	}
}

func TestFetchUsesVerifiedEntryAndRejectsCorrupt(t *testing.T) {
	m, err := ParseMatrix(embeddedMatrix)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := Select(m, []string{"6.1"})
	dir := t.TempDir()
	entry := filepath.Join(dir, "kernels", kernelKey(k[0]))
	fakeKernelEntry(t, entry)
	fakeCompiler(t, "gcc", fakeCCText)
	var logs []string
	var mu sync.Mutex
	c := &Cache{Dir: dir, Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasPrefix(f, "toolchain ") {
			logs = append(logs, f)
		}
	}}
	f, err := c.Fetch(context.Background(), k[0])
	if err != nil {
		t.Fatalf("Fetch of a warm entry: %v", err)
	}
	if !f.Timings.Cached || f.Release != "1.0-amd64" || f.Vmlinuz != filepath.Join(entry, "tree/boot/vmlinuz-1.0-amd64") {
		t.Fatalf("unexpected Fetched %+v", f)
	}
	if len(logs) != 0 {
		t.Fatalf("warm fetch logged %q", logs)
	}
}

func TestRelocateHeaders(t *testing.T) {
	kdir := filepath.Join(t.TempDir(), "usr", "src", "linux-headers-7.2-amd64")
	os.MkdirAll(kdir, 0o755)
	os.WriteFile(filepath.Join(kdir, "Makefile"), []byte("KBUILD_OUTPUT=/usr/src/linux-headers-7.2-amd64\ninclude /usr/src/linux-headers-7.2-common/Makefile\n"), 0o644)
	if err := relocateHeaders(kdir); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(kdir, "Makefile"))
	if strings.Contains(string(data), "/usr/src/") || !strings.Contains(string(data), "include $(kmodtest_usr_src)/linux-headers-7.2-common/Makefile") {
		t.Fatalf("unexpected Makefile:\n%s", data)
	}
}
