package kernels

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// These tests damage one cache entry of each kind (kernel, build root,
// module, extracted vmlinux; the base initramfs is in package initramfs)
// and check that the next use notices, logs it as corrupt and builds the
// entry again. The external programs that fill an entry (apt, dpkg-deb,
// mmdebstrap, make) are small stand-ins on $PATH that log each run; the
// cache code around them is the real one.

// fakeTools writes the stand-ins into a directory put first on $PATH and
// returns the file each of them logs its runs to.
func fakeTools(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "runs.log")
	t.Setenv("FAKE_LOG", log)
	scripts := map[string]string{
		"apt-get": `case " $* " in
*" update "*) echo "apt-get update" >> "$FAKE_LOG" ;;
*" download "*) echo "apt-get download" >> "$FAKE_LOG"
	for a; do case $a in *=*) : > "${a%%=*}.deb" ;; esac; done ;;
esac`,
		"apt-cache": `shift
case $1 in
linux-image-amd64) printf 'Package: linux-image-amd64\nVersion: 1.0-1\nDepends: linux-image-1.0-amd64\n\n' ;;
linux-headers-amd64) printf 'Package: linux-headers-amd64\nVersion: 1.0-1\nDepends: linux-headers-1.0-amd64\n\n' ;;
linux-headers-1.0-amd64) printf 'Package: linux-headers-1.0-amd64\nVersion: 1.0-1\nDepends: linux-headers-1.0-common\n\n' ;;
*) printf 'Package: %s\nVersion: 1.0-1\nSize: 1000\n\n' "$1" ;;
esac`,
		"dpkg-deb": `deb=$2 tree=$3
case $(basename "$deb") in
linux-image-*) mkdir -p "$tree/boot"; printf 'a kernel image' > "$tree/boot/vmlinuz-1.0-amd64" ;;
linux-headers-1.0-amd64.deb) h=$tree/usr/src/linux-headers-1.0-amd64; mkdir -p "$h/include/config"
	echo 'include /usr/src/linux-headers-1.0-common/Makefile' > "$h/Makefile"
	echo 'CONFIG_CC_VERSION_TEXT="gcc (fake) 1.0"' > "$h/include/config/auto.conf" ;;
*) mkdir -p "$tree/usr/src/linux-headers-1.0-common"; : > "$tree/usr/src/linux-headers-1.0-common/Makefile" ;;
esac`,
		"apt-config": `exit 1`,
		"mmdebstrap": `for a; do case $a in */root|*/root.tar) t=$a ;; esac; done
echo mmdebstrap >> "$FAKE_LOG"
d=$t; case $t in *.tar) d=$(mktemp -d) ;; esac
mkdir -p "$d/usr/bin" "$d/bin" "$d/kmodtest/kernel" "$d/kmodtest/src"
printf 'make binary' > "$d/usr/bin/make"
printf 'shell' > "$d/bin/sh"
[ -n "$FAKE_ROOT_NO_AWK" ] || printf 'awk binary' > "$d/usr/bin/awk"
printf 'gcc binary' > "$d/usr/bin/x86_64-linux-gnu-gcc-14"
case $t in *.tar) tar -C "$d" -cf "$t" . ;; esac`,
		"make": `for a; do case $a in M=*) m=${a#M=} ;; esac; done
echo make >> "$FAKE_LOG"
printf 'ELF module' > "$m/hello.ko"`,
		"gcc": `echo "gcc (fake) 1.0"`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return log
}

// runs returns how often the stand-in cmd ran.
func runs(t *testing.T, log, cmd string) int {
	t.Helper()
	data, _ := os.ReadFile(log)
	return strings.Count(string(data), cmd+"\n")
}

// logCache returns a cache in a new directory whose log lines are kept.
func logCache(t *testing.T) (*Cache, func() string) {
	var mu sync.Mutex
	var lines []string
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache"), Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(f, a...))
	}}
	return c, func() string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(lines, "\n")
		lines = nil
		return s
	}
}

// fakeKernel is a matrix entry the stand-ins serve; toolchain names a
// build root, or is HostToolchain.
func fakeKernel(toolchain string) Kernel {
	k := Kernel{Name: "k1", Suite: "sid", Arch: arch.AMD64, Apt: []string{"deb http://fake.invalid/debian sid main"},
		ImageMeta: "linux-image-amd64", HeadersMeta: "linux-headers-amd64",
		Image: "linux-image-{release}-unsigned", Vmlinuz: "boot/vmlinuz-{release}",
		Toolchain: toolchain, Profiles: []string{"default"}}
	if toolchain != HostToolchain {
		k.Root = &BuildRoot{Name: toolchain, Suite: "sid", Apt: k.Apt, Packages: []string{"gcc-14", "make"}}
	}
	return k
}

func TestCorruptKernelRefetched(t *testing.T) {
	log := fakeTools(t)
	c, logs := logCache(t)
	ctx := context.Background()
	k := fakeKernel(HostToolchain)
	f, err := c.Fetch(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if runs(t, log, "apt-get download") != 1 || f.Timings.Cached {
		t.Fatalf("first fetch: %d downloads, cached=%v", runs(t, log, "apt-get download"), f.Timings.Cached)
	}
	if f, err = c.Fetch(ctx, k); err != nil || !f.Timings.Cached || runs(t, log, "apt-get download") != 1 {
		t.Fatalf("warm fetch downloaded again or failed: %v", err)
	}
	logs()
	if err := os.Truncate(f.Vmlinuz, 5); err != nil {
		t.Fatal(err)
	}
	f, err = c.Fetch(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if got := logs(); !strings.Contains(got, "k1 entry corrupt (tree/boot/vmlinuz-1.0-amd64 size 5, manifest says 14), refetching") {
		t.Errorf("truncated vmlinuz not reported as corrupt:\n%s", got)
	}
	if runs(t, log, "apt-get download") != 2 || f.Timings.Cached {
		t.Fatalf("truncated vmlinuz: %d downloads, cached=%v; want a second download", runs(t, log, "apt-get download"), f.Timings.Cached)
	}
	if data, _ := os.ReadFile(f.Vmlinuz); string(data) != "a kernel image" {
		t.Fatalf("refetched vmlinuz holds %q", data)
	}
}

// TestBuildRootWithoutToolsNotKept: a root that mmdebstrap made without
// a tool Kbuild calls (here awk, an alternative the extract variant does
// not configure) is an error naming the tool, and no cache entry.
func TestBuildRootWithoutToolsNotKept(t *testing.T) {
	fakeTools(t)
	t.Setenv("FAKE_ROOT_NO_AWK", "1")
	c, _ := logCache(t)
	r := fakeKernel("sid").Root
	_, _, err := c.ensureRoot(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "made a root without /usr/bin/awk") {
		t.Fatalf("ensureRoot: %v, want the missing awk named", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(c.Dir, "roots", "*")); len(entries) != 0 {
		t.Errorf("a root without its tools was kept: %v", entries)
	}
}

func TestCorruptBuildRootRecreated(t *testing.T) {
	log := fakeTools(t)
	c, logs := logCache(t)
	ctx := context.Background()
	r := fakeKernel("sid").Root
	dir, cached, err := c.ensureRoot(ctx, r)
	if err != nil || cached {
		t.Fatalf("first ensureRoot: cached=%v err=%v", cached, err)
	}
	if _, cached, err = c.ensureRoot(ctx, r); err != nil || !cached {
		t.Fatalf("second ensureRoot: cached=%v err=%v, want the cached root", cached, err)
	}
	logs()
	gcc := filepath.Join(dir, "root/usr/bin/x86_64-linux-gnu-gcc-14")
	if err := os.WriteFile(gcc, []byte("gcc binarY"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, cached, err = c.ensureRoot(ctx, r); err != nil || cached {
		t.Fatalf("ensureRoot after damage: cached=%v err=%v, want a new root", cached, err)
	}
	if got := logs(); !strings.Contains(got, "build root sid corrupt (root/usr/bin/x86_64-linux-gnu-gcc-14 sha256 mismatch), recreating") {
		t.Errorf("altered compiler not reported as corrupt:\n%s", got)
	}
	if n := runs(t, log, "mmdebstrap"); n != 2 {
		t.Fatalf("mmdebstrap ran %d times, want 2", n)
	}
	if data, _ := os.ReadFile(gcc); string(data) != "gcc binary" {
		t.Fatalf("recreated compiler holds %q", data)
	}
}

func TestCorruptModuleRebuilt(t *testing.T) {
	log := fakeTools(t)
	c, logs := logCache(t)
	ctx := context.Background()
	f, err := c.Fetch(ctx, fakeKernel(HostToolchain))
	if err != nil {
		t.Fatal(err)
	}
	src := writeModule(t, "hello", helloC)
	mb, err := c.BuildModule(ctx, f, src, "")
	if err != nil || mb.Cached {
		t.Fatalf("first build: %+v, %v", mb, err)
	}
	if again, err := c.BuildModule(ctx, f, src, ""); err != nil || !again.Cached {
		t.Fatalf("second build: %+v, %v; want the cached module", again, err)
	}
	logs()
	if err := os.Truncate(mb.Ko, 3); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := c.BuildModule(ctx, f, src, "")
	if err != nil || rebuilt.Cached {
		t.Fatalf("build after truncation: %+v, %v; want a rebuild", rebuilt, err)
	}
	if got := logs(); !strings.Contains(got, "module hello for k1 corrupt (hello.ko sha256 mismatch), rebuilding") {
		t.Errorf("truncated module not reported as corrupt:\n%s", got)
	}
	if n := runs(t, log, "make"); n != 2 {
		t.Fatalf("make ran %d times, want 2", n)
	}
	if data, _ := os.ReadFile(rebuilt.Ko); string(data) != "ELF module" {
		t.Fatalf("rebuilt module holds %q", data)
	}
}

// pvhELF returns a minimal 64-bit ELF file with the Xen PVH entry note.
func pvhELF() []byte {
	var note bytes.Buffer
	binary.Write(&note, binary.LittleEndian, []uint32{4, 4, 18})
	note.WriteString("Xen\x00")
	note.Write([]byte{0, 0, 0, 1})
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&b, binary.LittleEndian, struct {
		Type, Machine                                  uint16
		Version                                        uint32
		Entry, Phoff, Shoff                            uint64
		Flags                                          uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Sx uint16
	}{2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0})
	binary.Write(&b, binary.LittleEndian, struct {
		Type, Flags                             uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{4, 4, 120, 0, 0, uint64(note.Len()), uint64(note.Len()), 4})
	b.Write(note.Bytes())
	return b.Bytes()
}

// fakeBzImage returns a bzImage whose gzip payload is vmlinux.
func fakeBzImage(vmlinux []byte) []byte {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(vmlinux)
	w.Close()
	const setupSects = 4
	img := make([]byte, (setupSects+1)*512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint32(img[0x248:], 0)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(gz.Len()))
	return append(img, gz.Bytes()...)
}

func TestCorruptVmlinuxExtractedAgain(t *testing.T) {
	c, logs := logCache(t)
	ctx := context.Background()
	elf := pvhELF()
	bz := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(bz, fakeBzImage(elf), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &Fetched{Kernel: Kernel{Name: "k1"}, Vmlinuz: bz}
	path, why, err := c.BootImage(ctx, f)
	if err != nil || path == bz {
		t.Fatalf("BootImage: %s (%s), %v; want an extracted vmlinux", path, why, err)
	}
	if _, why, _ := c.BootImage(ctx, f); !strings.Contains(why, "(cached)") {
		t.Fatalf("second BootImage: %s, want the cached vmlinux", why)
	}
	logs()
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	again, why, err := c.BootImage(ctx, f)
	if err != nil || again != path || strings.Contains(why, "cached") {
		t.Fatalf("BootImage after truncation: %s (%s), %v; want a new extraction", again, why, err)
	}
	if got := logs(); !strings.Contains(got, fmt.Sprintf("vmlinux of k1 corrupt (vmlinux.elf size 100, manifest says %d), rebuilding", len(elf))) {
		t.Errorf("truncated vmlinux not reported as corrupt:\n%s", got)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, elf) {
		t.Fatal("the extracted vmlinux differs from the payload")
	}
	var m cachefs.FileManifest
	if err := cachefs.LoadManifest(filepath.Dir(path), &m); err != nil || m.Owner != "k1" {
		t.Fatalf("vmlinux manifest: %+v, %v; want owner k1", m, err)
	}
}

// TestPrunePlan fills a cache with 12 module builds of one kernel and a
// few old entries, and checks what pruning would remove.
func TestPrunePlan(t *testing.T) {
	c, _ := logCache(t)
	if err := cachefs.Claim(c.Dir); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	entry := func(rel string, used time.Time) {
		dir := filepath.Join(c.Dir, rel)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "hello.ko"), make([]byte, 1000), 0o644)
		cachefs.WriteJSON(filepath.Join(dir, cachefs.ManifestName), struct{}{})
		os.Chtimes(filepath.Join(dir, cachefs.ManifestName), used, used)
	}
	for i := range 12 {
		entry(fmt.Sprintf("modules/6.1-%024x", i), now.Add(-time.Duration(i)*4*time.Hour))
	}
	// A run builds its module and fixtures up front and boots them for up
	// to an hour: builds of the last day stay however many there are.
	for i := range 13 {
		entry(fmt.Sprintf("modules/7.3-%024x", i), now.Add(-time.Duration(i)*5*time.Minute))
	}
	entry("modules/7.2-000000000000000000000000", now.Add(-40*24*time.Hour))
	entry("kernels/6.12-0123456789ab", now.Add(-40*24*time.Hour))
	entry("kernels/6.1-9c5ececb278f", now.Add(-time.Hour))
	os.MkdirAll(filepath.Join(c.Dir, "apt", "6.1-9c5ececb278f"), 0o755)
	os.MkdirAll(filepath.Join(c.Dir, "apt", "5.10-000000000000"), 0o755)
	os.MkdirAll(filepath.Join(c.Dir, "modules", ".tmp-6.1-aaaa-123"), 0o755)
	os.Chtimes(filepath.Join(c.Dir, "modules", ".tmp-6.1-aaaa-123"), now.Add(-48*time.Hour), now.Add(-48*time.Hour))
	os.MkdirAll(filepath.Join(c.Dir, "vmlinux"), 0o755)
	os.WriteFile(filepath.Join(c.Dir, "vmlinux", "1732895d67408318.elf"), []byte("old layout"), 0o644)

	plan, err := c.PrunePlan(now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range plan {
		got = append(got, strings.TrimPrefix(r.Path, c.Dir+"/"))
	}
	slices.Sort(got)
	want := []string{
		"apt/5.10-000000000000", // its kernel entry is gone
		"kernels/6.12-0123456789ab",
		"modules/.tmp-6.1-aaaa-123",
		fmt.Sprintf("modules/6.1-%024x", 8), // beyond the newest 8 of 6.1
		fmt.Sprintf("modules/6.1-%024x", 9),
		fmt.Sprintf("modules/6.1-%024x", 10),
		fmt.Sprintf("modules/6.1-%024x", 11),
		"modules/7.2-000000000000000000000000", // unused for 40 days
		"vmlinux/1732895d67408318.elf",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("unexpected prune plan:\n- want %q\n- got  %q", want, got)
	}
	if _, err := c.Remove(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.PrunePlan(now); len(again) != 0 {
		t.Fatalf("a pruned cache still has %d entries to prune", len(again))
	}
}

// TestBuildPrunesOldModules: a fresh module build prunes the builds of
// the kernel beyond the newest keepModules and says so.
func TestBuildPrunesOldModules(t *testing.T) {
	fakeTools(t)
	c, logs := logCache(t)
	ctx := context.Background()
	f, err := c.Fetch(ctx, fakeKernel(HostToolchain))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Hour)
	for i := range keepModules {
		dir := filepath.Join(c.Dir, "modules", fmt.Sprintf("k1-%024x", i))
		os.MkdirAll(dir, 0o755)
		cachefs.WriteJSON(filepath.Join(dir, cachefs.ManifestName), struct{}{})
		os.Chtimes(filepath.Join(dir, cachefs.ManifestName), old.Add(-time.Duration(i)*time.Minute), old)
	}
	logs()
	if _, err := c.BuildModule(ctx, f, writeModule(t, "hello", helloC), ""); err != nil {
		t.Fatal(err)
	}
	oldest := fmt.Sprintf("modules/k1-%024x", keepModules-1)
	if got := logs(); !strings.Contains(got, "cache: pruned 1 old entries") || !strings.Contains(got, oldest) {
		t.Fatalf("want the oldest of %d+1 builds pruned and reported:\n%s", keepModules, got)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, oldest)); err == nil {
		t.Fatalf("%s survived", oldest)
	}
}

// TestPruneNeverWaits: a module build prunes the cache; an entry whose
// lock another process holds (the 6.12-debug kernel being built while a
// run of 6.1 builds its module) is in use: pruning skips it at once
// instead of waiting for the whole kernel build.
func TestPruneNeverWaits(t *testing.T) {
	c, logs := logCache(t)
	if err := cachefs.Claim(c.Dir); err != nil {
		t.Fatal(err)
	}
	// apt state whose kernel entry is not there yet: the kernel is being
	// built, under its lock.
	held := filepath.Join(c.Dir, "apt", "6.12-debug-0123456789ab")
	idle := filepath.Join(c.Dir, "apt", "5.10-000000000000")
	for _, d := range []string{held, idle} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := cachefs.Lock(t.Context(), c.entryLock("apt", "6.12-debug-0123456789ab"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	done := make(chan struct{})
	go func() { c.prune(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("prune waited for a lock another build holds")
	}
	if _, err := os.Stat(held); err != nil {
		t.Errorf("the held entry was removed: %v", err)
	}
	if _, err := os.Stat(idle); err == nil {
		t.Errorf("the idle entry was kept")
	}
	if l := logs(); strings.Contains(l, "waiting for") {
		t.Errorf("prune said it waits:\n%s", l)
	}
}

// TestBuildDirAfterCutOffBuild: the cache builds kmod-like modules in a
// build directory it keeps per kernel and source; one whose last build
// was cut off (no marker) may hold half-written objects that make would
// trust, so the next build empties it first.
func TestBuildDirAfterCutOffBuild(t *testing.T) {
	fakeTools(t)
	c, _ := logCache(t)
	ctx := context.Background()
	f, err := c.Fetch(ctx, fakeKernel(HostToolchain))
	if err != nil {
		t.Fatal(err)
	}
	src := writeModule(t, "hello", helloC)
	if _, err := c.BuildModule(ctx, f, src, ""); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(c.Dir, "work", "k1-*"))
	if len(dirs) != 1 {
		t.Fatalf("build dirs %v, want one for k1", dirs)
	}
	work := dirs[0]
	half := filepath.Join(work, "half-written.o")
	if err := os.WriteFile(half, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Kept while the marker says the last build finished.
	if err := os.WriteFile(filepath.Join(src, "hello.c"), []byte(helloC+"/* edit 1 */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BuildModule(ctx, f, src, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); err != nil {
		t.Fatalf("a settled build dir was emptied: %v", err)
	}
	// A cut-off build leaves no marker.
	if err := os.Remove(filepath.Join(work, ".kmodtest-replay-ok")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.c"), []byte(helloC+"/* edit 2 */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mb, err := c.BuildModule(ctx, f, src, "")
	if err != nil || mb.Cached {
		t.Fatalf("build after a cut-off one: %+v, %v", mb, err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("the object of a cut-off build survived: %v", err)
	}
	if data, _ := os.ReadFile(mb.Ko); string(data) != "ELF module" {
		t.Fatalf("module holds %q", data)
	}
}
