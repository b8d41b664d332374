package project

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func load(t *testing.T, dir string) *Project {
	t.Helper()
	p, err := Load(t.Context(), filepath.Join("testdata", dir))
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return p
}

// TestLoadVpollStyle reads a dkms.conf in the style of Debian's
// vpoll-dkms: ${PACKAGE_NAME} expanded, DKMS's variables kept for the
// build.
func TestLoadVpollStyle(t *testing.T) {
	p := load(t, "vpoll-style")
	if p.Name != "tiny" || p.Version != "0.3" {
		t.Errorf("name, version = %q, %q; want tiny, 0.3", p.Name, p.Version)
	}
	want := []Module{{Name: "tiny", Dest: "/extra"}}
	if !slices.EqualFunc(p.Modules, want, moduleEqual) {
		t.Errorf("modules:\n- want %+v\n- got  %+v", want, p.Modules)
	}
	if got, want := p.Conf.Make[0], "make -C ${kernel_source_dir} M=${dkms_tree}/tiny/0.3/build"; got != want {
		t.Errorf("MAKE[0]:\n- want %q\n- got  %q", want, got)
	}
	if !p.Conf.Autoinstall {
		t.Error("AUTOINSTALL=YES not read as set")
	}
}

func moduleEqual(a, b Module) bool {
	return a.Name == b.Name && a.Location == b.Location && a.Dest == b.Dest && len(a.Params) == len(b.Params)
}

// TestLoadLoopbackStyle reads v4l2loopback's style: unquoted and single
// quoted values, MAKE without an index, a conditional on the kernel's
// .config, and a variable DKMS does not know, which is kept.
func TestLoadLoopbackStyle(t *testing.T) {
	p := load(t, "loopback-style")
	if p.Name != "loop" || p.Version != "1.0" {
		t.Errorf("name, version = %q, %q", p.Name, p.Version)
	}
	if got, want := p.Conf.Make, []string{"make KERNEL_DIR=${kernel_source_dir} all"}; !slices.Equal(got, want) {
		t.Errorf("MAKE: want %q, got %q", want, got)
	}
	if got, want := p.Conf.Vars["MY_OWN_SETTING"], "kept for ${kernelver}"; got != want {
		t.Errorf("MY_OWN_SETTING: want %q, got %q", want, got)
	}
	if p.Conf.ExclusiveKernel != "" {
		t.Errorf("without a kernel, the .config test must not run: BUILD_EXCLUSIVE_KERNEL=%q", p.Conf.ExclusiveKernel)
	}

	// Per kernel, the conditional runs on that kernel's .config.
	kdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(kdir, ".config"), []byte("CONFIG_VIDEO_DEV=m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err := p.ForKernel(t.Context(), Kernel{Release: "6.1.0-57-amd64", SourceDir: kdir, Machine: "x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	if pl.Excluded != "" || pl.Make != p.Conf.Make[0] || pl.Dir != "loop/1.0/build" {
		t.Errorf("plan with CONFIG_VIDEO_DEV=m: %+v", pl)
	}
	if err := os.WriteFile(filepath.Join(kdir, ".config"), []byte("# CONFIG_VIDEO_DEV is not set\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err = p.ForKernel(t.Context(), Kernel{Release: "6.1.0-57-amd64", SourceDir: kdir, Machine: "x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pl.Excluded, "REQUIRES CONFIG_VIDEO_DEV") {
		t.Errorf("without CONFIG_VIDEO_DEV the kernel must be excluded, got %q", pl.Excluded)
	}
}

// TestLoadArrays reads several modules by index, their locations, and
// the BUILD_EXCLUSIVE_* and MAKE_MATCH rules per kernel.
func TestLoadArrays(t *testing.T) {
	p := load(t, "arrays")
	want := []Module{{Name: "pair_core", Location: "core", Dest: "/updates/dkms"}, {Name: "pair_extra", Location: "extra", Dest: "/updates/dkms"}}
	if !slices.EqualFunc(p.Modules, want, moduleEqual) {
		t.Errorf("modules:\n- want %+v\n- got  %+v", want, p.Modules)
	}
	for _, c := range []struct {
		release, machine, excluded, make string
	}{
		{"5.10.0-32-amd64", "x86_64", "", "make LEGACY=1 -C"},
		{"6.1.0-57-amd64", "x86_64", "", "make -C"},
		{"7.3.4+deb13-amd64", "x86_64", "BUILD_EXCLUSIVE_KERNEL_MAX=7.2.99 is below 7.3.4+deb13-amd64", ""},
		{"4.19.0-27-amd64", "x86_64", "BUILD_EXCLUSIVE_KERNEL_MIN=5.10 is above 4.19.0-27-amd64", ""},
		{"6.1.0-57-armmp", "armv7l", `BUILD_EXCLUSIVE_ARCH="x86_64|aarch64" does not match armv7l`, ""},
	} {
		pl, err := p.ForKernel(t.Context(), Kernel{Release: c.release, SourceDir: t.TempDir(), Machine: c.machine})
		if err != nil {
			t.Fatal(err)
		}
		if pl.Excluded != c.excluded || !strings.HasPrefix(pl.Make, c.make) {
			t.Errorf("%s %s: excluded %q, make %q; want %q, %q…", c.release, c.machine, pl.Excluded, pl.Make, c.excluded, c.make)
		}
	}
}

// TestLoadManifest shows the manifest adding to dkms.conf: its name
// wins, its modules come first in load order with their parameter sets.
func TestLoadManifest(t *testing.T) {
	p := load(t, "manifest")
	if p.Name != "pair-driver" || !p.WarningsFail {
		t.Errorf("name %q, warnings_fail %v", p.Name, p.WarningsFail)
	}
	if got := moduleNames(p.Modules); !slices.Equal(got, []string{"pair_extra", "pair_core"}) {
		t.Errorf("load order %q, want pair_extra, pair_core", got)
	}
	if m := p.Modules[0]; m.Location != "extra" || len(m.Params) != 3 || !m.Params[2].Refused {
		t.Errorf("pair_extra: %+v", m)
	}
	if len(p.Tests) != 2 || !p.Tests[1].KTAP || p.Tests[0].C[0] != "tests/pairctl.c" {
		t.Errorf("tests: %+v", p.Tests)
	}
}

func TestLoadPlainKbuild(t *testing.T) {
	p := load(t, "plain")
	if p.Conf != nil || p.Manifest != nil || p.Modules != nil || p.Name != "plain" {
		t.Errorf("plain Kbuild project: %+v", p)
	}
	pl, err := p.ForKernel(t.Context(), Kernel{Release: "6.1.0-57-amd64"})
	if err != nil || pl.Make != "" || pl.Dir != "" || pl.Modules != nil {
		t.Errorf("plan %+v, %v: want the default make, every .ko", pl, err)
	}
}

// TestLoadErrors shows each bad project's error names the file, the
// line where there is one, and the fix.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{"badsyntax", []string{"badsyntax/dkms.conf", "line 4", "unexpected EOF", "fix the shell syntax"}},
		{"badmanifest", []string{"badmanifest/kmodtest.json", "line 3", `unknown field "module"`, "docs/projects.md"}},
		{"nomodule", []string{"nomodule/dkms.conf names no module", "add BUILT_MODULE_NAME[0]=NAME"}},
		{"does-not-exist", []string{"no such file"}},
	} {
		_, err := Load(t.Context(), filepath.Join("testdata", c.dir))
		if err == nil {
			t.Errorf("%s: loaded without error", c.dir)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.dir, err, w)
			}
		}
	}
}

func TestManifestValidate(t *testing.T) {
	for _, c := range []struct {
		json, want string
	}{
		{`{"modules": [{"name": "a.ko"}]}`, "without .ko"},
		{`{"modules": [{"name": "a"}, {"name": "a"}]}`, "listed twice"},
		{`{"modules": [{"name": "a", "params": [{"name": "p", "args": ["x"]}]}]}`, "write name=value"},
		{`{"tests": [{"name": "t"}]}`, "run is empty"},
		{`{"tests": [{"name": "t", "run": ["x"], "timeout": "soon"}]}`, "Go duration"},
		{`{"warnings_fail": "yes"}`, "line 1: field warnings_fail must be true or false"},
		{"{\n\"name\": \"x\",\n}", "line 3"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readManifest(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.json, err, c.want)
		}
	}
}

// TestManifestModuleNotInConf: a manifest module dkms.conf does not
// build is an error naming the modules it does.
func TestManifestModuleNotInConf(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/arrays/dkms.conf")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, DKMSFile), data, 0o644)
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(`{"modules": [{"name": "pair_ghost"}]}`), 0o644)
	_, err = Load(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "pair_ghost is not one of dkms.conf's BUILT_MODULE_NAMEs (pair_core, pair_extra)") {
		t.Errorf("error %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"5.10", "6.1", true},
		{"6.1", "5.10", false},
		{"6.1.0-57-amd64", "6.1", false},
		{"6.1", "6.1.0-57-amd64", true},
		{"6.9", "6.12", true},
		{"6.12.117+deb13-amd64", "6.12.117+deb13-amd64", false},
	} {
		if got := VersionLess(c.a, c.b); got != c.less {
			t.Errorf("VersionLess(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

// TestSourceAsDKMS: what the file prints and its last status do not
// matter, as under DKMS; a command that fails with a message is an error
// naming the line.
func TestSourceAsDKMS(t *testing.T) {
	dir := t.TempDir()
	conf := "echo noise\nPACKAGE_NAME=x\nBUILT_MODULE_NAME[0]=x\ndeclare -A EXTRA=([k]=v)\nfalse\n"
	os.WriteFile(filepath.Join(dir, DKMSFile), []byte(conf), 0o644)
	p, err := Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "x" || p.Conf.Vars["EXTRA[k]"] != "v" {
		t.Errorf("name %q, vars %q", p.Name, p.Conf.Vars)
	}
	os.WriteFile(filepath.Join(dir, DKMSFile), []byte("PACKAGE_NAME=x\nnosuchcommand-kmodtest\n"), 0o644)
	_, err = Load(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "line 2: nosuchcommand-kmodtest: command not found") {
		t.Errorf("error %v, want one naming line 2", err)
	}
}
