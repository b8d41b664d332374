package cachefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLockExcludesGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	ctx := context.Background()
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock, err := Lock(ctx, path, func(string, ...any) {})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d holders at once, want 1", maxInside)
	}
	unlock, _ := Lock(ctx, path, func(string, ...any) {})
	defer unlock()
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := Lock(cctx, path, func(string, ...any) {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded while held, got %v", err)
	}
}

func TestRemoveAllStaysInside(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	outside := filepath.Join(filepath.Dir(root), "precious")
	for _, d := range []string{filepath.Join(root, "kernels", "6.1-abc"), outside, root + "x"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Dir(root), filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		root,
		root + "/",
		filepath.Join(root, ".."),
		filepath.Join(root, "kernels", "..", ".."),
		filepath.Join(root, "..", "precious"),
		root + "x", // a sibling sharing the prefix
		filepath.Join(root, "up", "precious"),
		"/",
	} {
		err := RemoveAll(root, p)
		if err == nil || !strings.Contains(err.Error(), "refusing to remove") {
			t.Errorf("RemoveAll(%s, %s) = %v, want a refusal", root, p, err)
		}
	}
	for _, d := range []string{outside, root + "x", filepath.Join(root, "kernels", "6.1-abc")} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if err := RemoveAll(root, filepath.Join(root, "kernels", "6.1-abc")); err != nil {
		t.Fatalf("remove an entry inside: %v", err)
	}
	if err := RemoveAll(root, filepath.Join(root, "up")); err != nil {
		t.Fatalf("remove a link inside: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("removing the link removed its target: %v", err)
	}
	if err := RemoveAll("", filepath.Join(root, "kernels")); err == nil {
		t.Fatal("RemoveAll without a root must refuse")
	}
}

func TestRemoveAllReadOnlyDirs(t *testing.T) {
	root := t.TempDir()
	ro := filepath.Join(root, "roots", "r", "usr")
	os.MkdirAll(ro, 0o755)
	os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o644)
	os.Chmod(ro, 0o555)
	if err := RemoveAll(root, filepath.Join(root, "roots", "r")); err != nil {
		t.Fatal(err)
	}
}

func TestClaim(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "fresh", "kmodtest")
	if err := Claim(fresh); err != nil {
		t.Fatalf("claim a new directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fresh, MarkerName)); err != nil {
		t.Fatalf("no marker in a directory kmodtest created: %v", err)
	}
	legacy := filepath.Join(base, "legacy")
	os.MkdirAll(filepath.Join(legacy, "kernels"), 0o755)
	if err := Claim(legacy); err != nil {
		t.Fatalf("a cache from before the marker holding only kmodtest's directories: %v", err)
	}
	foreign := filepath.Join(base, "dotcache")
	os.MkdirAll(filepath.Join(foreign, "mozilla"), 0o755)
	err := Claim(foreign)
	var fe *ForeignDirError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "mozilla") || !strings.Contains(err.Error(), "KMODTEST_CACHE") {
		t.Fatalf("claim a directory with foreign files: want *ForeignDirError naming mozilla and KMODTEST_CACHE, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, MarkerName)); err == nil {
		t.Fatal("a foreign directory was marked")
	}
	if exists, err := CheckOwned(foreign); !exists || err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Fatalf("CheckOwned(foreign) = %v, %v", exists, err)
	}
	if exists, err := CheckOwned(filepath.Join(base, "absent")); exists || err != nil {
		t.Fatalf("CheckOwned(absent) = %v, %v", exists, err)
	}
}

// TestClaimConcurrent: parallel fetches claim a cache from before the
// marker at once; none may take another's marker for a foreign file.
func TestClaimConcurrent(t *testing.T) {
	for round := range 50 {
		dir := filepath.Join(t.TempDir(), "legacy")
		os.MkdirAll(filepath.Join(dir, "kernels"), 0o755)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = Claim(dir) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent Claim: %v", round, err)
			}
		}
	}
}

// TestStageRemovesLeftovers: a staging directory left by a process that
// died is removed by the next Stage of the same entry, and only that.
func TestStageRemovesLeftovers(t *testing.T) {
	root := t.TempDir()
	final := filepath.Join(root, "modules", "6.1-aaaa")
	left := filepath.Join(root, "modules", ".tmp-6.1-aaaa-123")
	other := filepath.Join(root, "modules", ".tmp-6.1-bbbb-456")
	os.MkdirAll(left, 0o755)
	os.MkdirAll(other, 0o755)
	st, err := Stage(root, final)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	if _, err := os.Stat(left); err == nil {
		t.Error("leftover of the same entry survived")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("leftover of another entry was removed")
	}
	if _, err := Stage(root, filepath.Join(root, "..", "x")); err == nil {
		t.Error("Stage outside the root was allowed")
	}
}

// fileEntry returns a FileEntry under root whose Build writes content and
// counts its calls.
func fileEntry(root string, content string, builds *int, logs *[]string) *FileEntry {
	var mu sync.Mutex
	return &FileEntry{
		Root: root, Dir: filepath.Join(root, "vmlinux", "k"), Name: "vmlinux.elf",
		Lock: filepath.Join(root, "locks", "vmlinux-k.lock"), Owner: "6.1", Kind: "vmlinux of 6.1",
		Logf: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			*logs = append(*logs, fmt.Sprintf(f, a...))
		},
		Build: func(ctx context.Context, path string) error {
			mu.Lock()
			*builds++
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			return os.WriteFile(path, []byte(content), 0o644)
		},
	}
}

func TestFileEntryBuildsOnceAndRebuildsCorrupt(t *testing.T) {
	root := t.TempDir()
	builds := 0
	var logs []string
	e := fileEntry(root, "an ELF file", &builds, &logs)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, _, err := e.Get(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if builds != 1 {
		t.Fatalf("4 concurrent callers built %d times, want 1", builds)
	}
	path := filepath.Join(e.Dir, e.Name)
	for _, damage := range []struct {
		name string
		do   func()
		want string
	}{
		{"truncated", func() { os.Truncate(path, 3) }, "vmlinux.elf size 3, manifest says 11"},
		{"altered", func() { os.WriteFile(path, []byte("an ELF filE"), 0o644) }, "vmlinux.elf sha256 mismatch"},
		{"manifest gone", func() { os.Remove(filepath.Join(e.Dir, ManifestName)) }, "no manifest"},
	} {
		t.Run(damage.name, func(t *testing.T) {
			before := builds
			logs = nil
			damage.do()
			got, cached, err := e.Get(ctx)
			if err != nil || cached || builds != before+1 {
				t.Fatalf("Get after damage: cached=%v builds=%d err=%v; want a rebuild", cached, builds-before, err)
			}
			if data, _ := os.ReadFile(got); string(data) != "an ELF file" {
				t.Fatalf("rebuilt file holds %q", data)
			}
			if len(logs) != 1 || !strings.Contains(logs[0], "vmlinux of 6.1 corrupt") || !strings.Contains(logs[0], damage.want) {
				t.Fatalf("want one 'corrupt' log line naming %q, got %q", damage.want, logs)
			}
		})
	}
}

// BenchmarkVerifyVmlinuxSize measures what verifying an entry on every
// use costs for a file the size of an extracted vmlinux (62 MB for
// Debian's 6.1), the largest file verified per boot.
func BenchmarkVerifyVmlinuxSize(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vmlinux.elf"), make([]byte, 62<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	sum, err := SumFile(dir, "vmlinux.elf")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(sum.Size)
	for b.Loop() {
		if err := sum.Verify(dir); err != nil {
			b.Fatal(err)
		}
	}
}
