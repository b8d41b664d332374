package kernels

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/userpath"
)

func TestLoadMatrixEmbedded(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	m, err := LoadMatrix()
	if err != nil {
		t.Fatalf("LoadMatrix: %v", err)
	}
	want := []string{"5.10", "6.1", "6.12", "7.2", "7.3", "6.12-debug", "6.1-arm64", "6.12-arm64", "7.3-arm64"}
	if got := Names(m); !slices.Equal(got, want) {
		t.Fatalf("unexpected kernels:\n- want %v\n- got  %v", want, got)
	}
	for _, k := range m {
		if k.Toolchain != HostToolchain && (k.Root == nil || k.Root.Name != k.Toolchain) {
			t.Errorf("kernel %s: toolchain %q not resolved to a build root", k.Name, k.Toolchain)
		}
	}
	for _, k := range m {
		if want := map[bool]arch.Arch{true: arch.ARM64, false: arch.AMD64}[strings.HasSuffix(k.Name, "-arm64")]; k.Arch != want {
			t.Errorf("kernel %s: arch %s, want %s", k.Name, k.Arch, want)
		}
	}
	profiles := map[string][]string{}
	for _, k := range m {
		profiles[k.Name] = k.Profiles
	}
	if !slices.Contains(profiles["5.10"], "hardened") || !slices.Contains(profiles["7.3"], "hardened") {
		t.Errorf("5.10 and 7.3 must run the hardened profile: %v", profiles)
	}
}

func TestLoadMatrixFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	data := `{"kernels": [{"name": "x", "suite": "sid", "apt": ["deb {mirror} sid main"],
		"image_meta": "linux-image-amd64", "headers_meta": "linux-headers-amd64",
		"image": "linux-binary-{release}", "vmlinuz": "boot/vmlinuz", "toolchain": "host", "profiles": ["default"]}]}`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMODTEST_MATRIX", path)
	m, err := LoadMatrix()
	if err != nil {
		t.Fatalf("LoadMatrix: %v", err)
	}
	if len(m) != 1 || m[0].Name != "x" || m[0].Root != nil {
		t.Fatalf("unexpected matrix: %+v", m)
	}
	if m[0].Arch != arch.AMD64 {
		t.Errorf("an entry without arch: want arch %s, got %q", arch.AMD64, m[0].Arch)
	}

	t.Setenv("KMODTEST_MATRIX", filepath.Join(t.TempDir(), "missing.json"))
	if _, err := LoadMatrix(); err == nil || !strings.Contains(err.Error(), "KMODTEST_MATRIX") {
		t.Fatalf("want an error naming KMODTEST_MATRIX, got %v", err)
	}
}

func TestParseMatrixErrors(t *testing.T) {
	const good = `"suite": "sid", "apt": ["deb {mirror} sid main"], "image_meta": "a", "headers_meta": "b", "image": "c", "vmlinuz": "d", "profiles": ["default"]`
	tests := []struct {
		name, json, want string
	}{
		{"no kernels", `{"kernels": []}`, "no kernels"},
		{"bad json", `{"kernels": [`, "line 1, column 13: unexpected EOF"},
		{"syntax error", "{\n  \"kernels\": [\n    {\"name\": \"a\",}\n  ]\n}", "line 3, column 18: invalid character '}'"},
		{"wrong type", "{\"kernels\": [\n {\"name\": \"a\", \"profiles\": \"default\"}]}", "line 2, column 36: kernels: json: cannot unmarshal string"},
		{"dot-dot name", `{"kernels": [{"name": "..", "toolchain": "host", ` + good + `}]}`, `kernel "..": a name must be a plain token`},
		{"slash name", `{"kernels": [{"name": "a/b", "toolchain": "host", ` + good + `}]}`, `kernel "a/b": a name must be a plain token`},
		{"dash name", `{"kernels": [{"name": "-run", "toolchain": "host", ` + good + `}]}`, `kernel "-run": a name must be a plain token`},
		{"hidden name", `{"kernels": [{"name": ".git", "toolchain": "host", ` + good + `}]}`, `kernel ".git": a name must be a plain token`},
		{"dot-dot root", `{"kernels": [{"name": "a", "toolchain": "..", ` + good + `}], "build_roots": {"..": {"apt": ["x"], "packages": ["gcc"]}}}`, `build root "..": a name must be a plain token`},
		{"unknown field", `{"kernels": [{"name": "a", "toolchain": "host", "colour": "red", ` + good + `}]}`, "unknown field"},
		{"unknown top key", `{"kernel": []}`, "unknown top-level key"},
		{"missing fields", `{"kernels": [{"name": "a", "toolchain": "host"}]}`, "missing apt, headers_meta, image, image_meta, profiles, suite, vmlinuz"},
		{"duplicate", `{"kernels": [{"name": "a", "toolchain": "host", ` + good + `}, {"name": "a", "toolchain": "host", ` + good + `}]}`, "listed twice"},
		{"unknown toolchain", `{"kernels": [{"name": "a", "toolchain": "bullseye", ` + good + `}]}`, `toolchain "bullseye" is neither`},
		{"unknown arch", `{"kernels": [{"name": "a", "arch": "riscv64", "toolchain": "host", ` + good + `}]}`, `arch "riscv64" is not supported (want one of amd64, arm64)`},
		{"root without packages", `{"kernels": [{"name": "a", "toolchain": "sid", ` + good + `}], "build_roots": {"sid": {"apt": ["x"]}}}`, "no packages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMatrix([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("unexpected error:\n- want containing %q\n- got  %v", tt.want, err)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	m, err := ParseMatrix(embeddedMatrix)
	if err != nil {
		t.Fatal(err)
	}
	all, err := Select(m, nil)
	if err != nil || len(all) != len(m) {
		t.Fatalf("Select(nil) = %d kernels, %v; want all %d", len(all), err, len(m))
	}
	two, err := Select(m, []string{"7.2", " 6.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Names(two); !slices.Equal(got, []string{"7.2", "6.1"}) {
		t.Fatalf("unexpected selection %v", got)
	}
	_, err = Select(m, []string{"6.1", "9.9"})
	t.Setenv("KMODTEST_MATRIX", "")
	want := `unknown kernel "9.9": the matrix (the built-in kernels/matrix.json) has 5.10, 6.1, 6.12, 7.2, 7.3, 6.12-debug, 6.1-arm64, 6.12-arm64, 7.3-arm64`
	if err == nil || err.Error() != want {
		t.Fatalf("unexpected error:\n- want %s\n- got  %v", want, err)
	}
	// A target's name (kernel-profile) says what -kernels takes instead.
	_, err = Select(m, []string{"5.10-hardened"})
	if err == nil || !strings.Contains(err.Error(), `"5.10-hardened" is kernel 5.10 with its hardened profile, a target: -kernels 5.10 runs every profile of 5.10`) {
		t.Fatalf("a target's name given as a kernel: got %v", err)
	}
	t.Setenv("KMODTEST_MATRIX", "/srv/my-matrix.json")
	_, err = Select(m, []string{"9.9"})
	if err == nil || !strings.Contains(err.Error(), "the matrix (KMODTEST_MATRIX=/srv/my-matrix.json) has") {
		t.Fatalf("unknown kernel with KMODTEST_MATRIX set: the message must name that file, got %v", err)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	home := t.TempDir()
	start, err := userpath.StartDir()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cache, xdg, want string
	}{
		{"KMODTEST_CACHE", "/srv/kc", "/x", "/srv/kc"},
		// Not kernels/.kcache: go test runs this binary in kernels/, but
		// the user typed the path where go test was started.
		{"relative KMODTEST_CACHE", ".kcache", "", filepath.Join(start, ".kcache")},
		{"XDG_CACHE_HOME", "", "/x/cache", "/x/cache/kmodtest"},
		{"home", "", "", filepath.Join(home, ".cache", "kmodtest")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("KMODTEST_CACHE", tt.cache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			got, err := DefaultCacheDir()
			if err != nil || got != tt.want {
				t.Fatalf("DefaultCacheDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Setenv("KMODTEST_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "relative")
	if _, err := DefaultCacheDir(); err == nil {
		t.Fatal("relative XDG_CACHE_HOME accepted")
	}
}

func TestKernelKeyArch(t *testing.T) {
	k := Kernel{Name: "6.1", Apt: []string{"deb {mirror} bookworm main"}, ImageMeta: "linux-image-amd64"}
	old := kernelKey(k)
	k.Arch = arch.AMD64
	if got := kernelKey(k); got != old {
		t.Errorf("arch amd64 changed the cache key of an entry without arch: %s, was %s", got, old)
	}
	k.Arch = arch.ARM64
	if got := kernelKey(k); got == old {
		t.Errorf("arch arm64 kept the amd64 cache key %s", got)
	}
}
