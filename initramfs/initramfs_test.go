package initramfs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/u-root/u-root/pkg/cpio"
)

// TestCompose checks that the composed image is the base, byte for byte,
// followed by an aligned archive holding the config and the module.
func TestCompose(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cpio")
	var b bytes.Buffer
	w := cpio.Newc.Writer(&b)
	if err := cpio.WriteRecordsAndDirs(w, []cpio.Record{cpio.StaticFile("init", "#!/bin/true", 0o755)}); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	b.WriteString("x") // an unaligned base, as a compressed image may be
	if err := os.WriteFile(base, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ko := filepath.Join(dir, "m.ko")
	if err := os.WriteFile(ko, []byte("ELF module"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out.cpio")
	cfg := contract.Config{ModulePath: "/lib/modules/kmodtest/m.ko", ModuleName: "m", Protocol: 31}
	if err := Compose(out, base, cfg, []File{{Source: ko, Target: cfg.ModulePath}}); err != nil {
		t.Fatalf("Compose: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, b.Bytes()) {
		t.Fatal("composed image does not start with the base image")
	}
	off := (b.Len() + 3) / 4 * 4
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(data[off:])))
	if err != nil {
		t.Fatalf("read appended archive: %v", err)
	}
	files := map[string]cpio.Record{}
	for _, r := range recs {
		files[r.Name] = r
	}
	if _, ok := files["lib/modules/kmodtest/m.ko"]; !ok {
		t.Errorf("module missing from the appended archive; have %v", recs)
	}
	rec, ok := files["etc/kmodtest/probe.json"]
	if !ok {
		t.Fatalf("prober config missing from the appended archive")
	}
	var got contract.Config
	raw := make([]byte, rec.FileSize)
	if _, err := rec.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode config: %v", err)
	}
	if got.ModulePath != cfg.ModulePath || got.Protocol != 31 {
		t.Errorf("unexpected config:\n- want %+v\n-  got %+v", cfg, got)
	}
}

// TestSourceHashChanges checks that editing a guest source changes the
// base image's key, so a stale image is never reused.
func TestSourceHashChanges(t *testing.T) {
	repo := t.TempDir()
	for _, d := range []string{"guest", "contract", "greet", "ktap"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("go.sum", "")
	write("guest/main.go", "package main\n")
	b := &Builder{RepoDir: repo}
	h1, err := b.sourceHash()
	if err != nil {
		t.Fatal(err)
	}
	write("guest/main_test.go", "package main // tests do not go into the image\n")
	if h2, _ := b.sourceHash(); h2 != h1 {
		t.Error("adding a _test.go file changed the hash")
	}
	write("guest/main.go", "package main\n\nfunc main() {}\n")
	if h3, _ := b.sourceHash(); h3 == h1 {
		t.Error("editing the prober did not change the hash")
	}
}

// fakeRepo writes the guest sources the base image's key is made of.
func fakeRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	for _, d := range []string{"guest", "contract", "greet", "ktap"} {
		os.MkdirAll(filepath.Join(repo, d), 0o755)
	}
	os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "go.sum"), nil, 0o644)
	os.WriteFile(filepath.Join(repo, "guest", "main.go"), []byte("package main\n"), 0o644)
	return repo
}

// slowBuild stands in for the ~20 s u-root build: it takes a while and
// appends a line to log for every build, so that builds across
// processes can be counted.
func slowBuild(log string) func(ctx context.Context, out string) error {
	return func(ctx context.Context, out string) error {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "build by %d\n", os.Getpid())
		f.Close()
		time.Sleep(time.Second)
		return os.WriteFile(out, []byte("070701 a base image"), 0o644)
	}
}

// TestBaseHelperProcess is the second builder of TestBaseBuiltOnceByTwoProcesses.
func TestBaseHelperProcess(t *testing.T) {
	if !testenv.IsHelper("TestBaseHelperProcess") {
		t.Skip("helper of TestBaseBuiltOnceByTwoProcesses")
	}
	b := &Builder{RepoDir: os.Getenv("KMODTEST_BASE_REPO"), CacheDir: os.Getenv("KMODTEST_BASE_CACHE"),
		build: slowBuild(os.Getenv("KMODTEST_BASE_LOG"))}
	base, err := b.Base(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BASE=%s\n", base.Path)
}

// TestBaseBuiltOnceByTwoProcesses starts a second process building the
// same base image at the same time: one builds, the other waits for it
// and reuses the image; a build folder left by a process that died is
// removed.
func TestBaseBuiltOnceByTwoProcesses(t *testing.T) {
	repo, cache := fakeRepo(t), t.TempDir()
	log := filepath.Join(t.TempDir(), "builds.log")
	dead := filepath.Join(cache, "initramfs", ".build-1234")
	os.MkdirAll(dead, 0o755)
	os.WriteFile(filepath.Join(dead, "base.cpio"), []byte("half"), 0o644)

	helper := testenv.Helper("TestBaseHelperProcess", "KMODTEST_BASE_REPO="+repo,
		"KMODTEST_BASE_CACHE="+cache, "KMODTEST_BASE_LOG="+log)
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	b := &Builder{RepoDir: repo, CacheDir: cache, build: slowBuild(log)}
	base, err := b.Base(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Wait(); err != nil {
		t.Fatalf("second builder: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "BASE="+base.Path+"\n") {
		t.Fatalf("the processes got different images: %s and\n%s", base.Path, out.String())
	}
	builds, _ := os.ReadFile(log)
	if n := strings.Count(string(builds), "build by"); n != 1 {
		t.Fatalf("two processes built the base image %d times, want 1:\n%s", n, builds)
	}
	if _, err := os.Stat(dead); err == nil {
		t.Fatal("the interrupted build folder .build-1234 was not removed")
	}
}

// TestBaseCorruptRebuilt truncates the cached base image: the next use
// must notice, say so and build it again.
func TestBaseCorruptRebuilt(t *testing.T) {
	repo, cache := fakeRepo(t), t.TempDir()
	log := filepath.Join(t.TempDir(), "builds.log")
	var logs []string
	b := &Builder{RepoDir: repo, CacheDir: cache, build: slowBuild(log),
		Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	first, err := b.Base(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.Base(context.Background()); err != nil || !again.Cached {
		t.Fatalf("second use: cached=%v err=%v, want the cached image", again != nil && again.Cached, err)
	}
	if err := os.Truncate(first.Path, 7); err != nil {
		t.Fatal(err)
	}
	logs = nil
	rebuilt, err := b.Base(context.Background())
	if err != nil || rebuilt.Cached {
		t.Fatalf("use after truncation: cached=%v err=%v, want a rebuild", rebuilt != nil && rebuilt.Cached, err)
	}
	if data, _ := os.ReadFile(rebuilt.Path); string(data) != "070701 a base image" {
		t.Fatalf("rebuilt image holds %q", data)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "base initramfs corrupt (base.cpio size 7, manifest says 19)") {
		t.Fatalf("the truncation was not reported as corruption: %q", logs)
	}
}
