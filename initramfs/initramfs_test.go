package initramfs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmodtest/kmodtest/probe"
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
	cfg := probe.Config{ModulePath: "/lib/modules/kmodtest/m.ko", ModuleName: "m", Protocol: 31}
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
	var got probe.Config
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
	for _, d := range []string{"guest", "probe", "greet"} {
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
