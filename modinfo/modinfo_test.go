package modinfo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	info := Parse([]byte("license=GPL\x00depends=videodev,v4l2-common\x00vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions \x00parm=devices:int\x00parm=debug:int\x00\x00"))
	if info.First("license") != "GPL" || len(info["parm"]) != 2 || info.First("missing") != "" {
		t.Errorf("Parse: %q", info)
	}
}

func TestCheck(t *testing.T) {
	kern := Kernel{
		Release:  "6.1.0-57-amd64",
		Provided: Lookup(map[string]bool{"videodev": true, "v4l2_common": true}),
		Packaged: Lookup(map[string]bool{"videodev": true}),
	}
	good := "vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions \x00"
	for _, c := range []struct {
		name, modinfo string
		problems      []string
		notes         []string
		gpl           bool
	}{
		{"good", good + "license=GPL\x00depends=videodev,own_helper\x00", nil, nil, true},
		{"wrong kernel", "vermagic=5.10.0-32-amd64 SMP mod_unload modversions \x00license=GPL v2\x00",
			[]string{`vermagic "5.10.0-32-amd64 SMP mod_unload modversions " is for kernel 5.10.0-32-amd64, not 6.1.0-57-amd64`}, nil, true},
		{"no license", good, []string{"no license: add MODULE_LICENSE"}, nil, false},
		{"proprietary", good + "license=Proprietary\x00", nil, []string{`license "Proprietary" is not GPL-compatible: loading it taints the kernel with P`}, false},
		{"missing dependency", good + "license=Dual BSD/GPL\x00depends=nosuchmod\x00",
			[]string{"depends on nosuchmod, which kernel 6.1.0-57-amd64 does not have as a module"}, nil, true},
		{"not packaged", good + "license=GPL\x00depends=v4l2-common\x00",
			[]string{"depends on v4l2-common, whose file is not in kernel 6.1.0-57-amd64's modules"}, nil, true},
		{"bad syntax", good + "license=GPL\x00depends=a b\x00", []string{`depends lists "a b", which is no module name`}, nil, true},
	} {
		r := Check("mod", Parse([]byte(c.modinfo)), kern, []string{"mod", "own-helper"})
		if !prefixes(r.Problems, c.problems) || !prefixes(r.Notes, c.notes) || r.GPL != c.gpl {
			t.Errorf("%s: problems %q, notes %q, GPL %v; want %q, %q, %v", c.name, r.Problems, r.Notes, r.GPL, c.problems, c.notes, c.gpl)
		}
	}
}

// prefixes reports whether each line of got starts with the line of want.
func prefixes(got, want []string) bool {
	return len(got) == len(want) && !slices.ContainsFunc(got, func(g string) bool {
		return !strings.HasPrefix(g, want[slices.Index(got, g)])
	})
}

// TestCheckSyntaxOnly: without the kernel's lists depends is only
// checked for syntax.
func TestCheckSyntaxOnly(t *testing.T) {
	r := Check("m", Parse([]byte("vermagic=7.2.13+deb14-amd64 SMP\x00license=GPL\x00depends=anything\x00")), Kernel{Release: "7.2.13+deb14-amd64"}, nil)
	if len(r.Problems) != 0 {
		t.Errorf("problems %q", r.Problems)
	}
}

func TestSymversAndPackaged(t *testing.T) {
	dir := t.TempDir()
	symvers := "0x00000000\tsystem_state\tvmlinux\tEXPORT_SYMBOL\t\n0x12345678\tvideo_register_device\tdrivers/media/v4l2-core/videodev\tEXPORT_SYMBOL\t\n0x0\tx\tdrivers/usb/serial/usb-serial\tEXPORT_SYMBOL_GPL\tUSB\n"
	if err := os.WriteFile(filepath.Join(dir, "Module.symvers"), []byte(symvers), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SymversModules(filepath.Join(dir, "Module.symvers"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["videodev"] || !got["usb_serial"] || got["vmlinux"] {
		t.Errorf("SymversModules: %v", got)
	}
	mods := filepath.Join(dir, "lib", "modules", "6.12", "kernel", "drivers")
	os.MkdirAll(mods, 0o755)
	os.WriteFile(filepath.Join(mods, "videodev.ko.xz"), nil, 0o644)
	os.WriteFile(filepath.Join(mods, "usb-serial.ko"), nil, 0o644)
	pk, err := PackagedModules(filepath.Join(dir, "lib", "modules", "6.12"))
	if err != nil {
		t.Fatal(err)
	}
	if !Lookup(pk)("usb-serial") || !Lookup(pk)("videodev") || Lookup(pk)("vpoll") {
		t.Errorf("PackagedModules: %v", pk)
	}
}

// TestReadNotModule: a file that is no ELF, or an ELF without
// .modinfo, is an error naming the file.
func TestReadNotModule(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.ko")
	os.WriteFile(f, []byte("not elf"), 0o644)
	if _, err := Read(f); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("Read of a text file: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(self); err == nil || !strings.Contains(err.Error(), "no .modinfo section") {
		t.Errorf("Read of the test binary: %v", err)
	}
}
