// Package modinfo reads a built kernel module's .modinfo section (the
// key=value strings modinfo(8) prints) and checks it against the kernel
// it was built for, on the host: no guest is needed to see a module built
// against the wrong kernel, without a license, or depending on a module
// the kernel does not have.
package modinfo

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// An Info is a module's .modinfo: each key's values, in file order.
type Info map[string][]string

// First is the first value of key, or "".
func (i Info) First(key string) string {
	if v := i[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Read reads the .modinfo section of the module file ko.
func Read(ko string) (Info, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", ko, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section: it is not a kernel module built by Kbuild", ko)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", ko, err)
	}
	return Parse(data), nil
}

// Parse splits a .modinfo section's NUL-ended key=value strings.
func Parse(data []byte) Info {
	info := Info{}
	for _, s := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			continue
		}
		info[k] = append(info[k], v)
	}
	return info
}

// gplCompatible are the licenses the kernel counts as GPL-compatible
// (include/linux/license.h, license_is_gpl_compatible): any other taints
// the kernel with P (proprietary module) on load and keeps GPL-only
// symbols from the module.
var gplCompatible = []string{"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"}

// GPLCompatible reports whether the kernel counts license as
// GPL-compatible.
func GPLCompatible(license string) bool { return slices.Contains(gplCompatible, license) }

// A Kernel is what the checks need to know of the kernel a module was
// built for.
type Kernel struct {
	// Release is the kernel's uname -r.
	Release string
	// Provided reports whether the kernel has a loadable module of this
	// name (see SymversModules); nil checks depends for syntax only.
	Provided func(name string) bool
	// Packaged reports whether the kernel's own package holds the
	// module's file, so a guest can load it; nil when the cache keeps no
	// modules for the kernel (it is then not checked).
	Packaged func(name string) bool
}

// A Result is the outcome of the checks of one module.
type Result struct {
	// Problems fail the check; Notes are worth saying but pass.
	Problems []string
	Notes    []string
	// License is the module's license, GPL whether the kernel counts it
	// GPL-compatible (a module that is not taints with P).
	License string
	GPL     bool
	Depends []string
}

// nameRE is a module name as depends lists it.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Check checks info, the .modinfo of module name, against k: vermagic
// names k's release, a license is given (and whether it is
// GPL-compatible), and each module of depends is a module name the kernel
// (or own, the project's other modules) provides.
func Check(name string, info Info, k Kernel, own []string) Result {
	var r Result
	vm := info.First("vermagic")
	switch rel, _, _ := strings.Cut(vm, " "); {
	case vm == "":
		r.Problems = append(r.Problems, "no vermagic: the module was not built by Kbuild's modpost")
	case rel != k.Release:
		r.Problems = append(r.Problems, fmt.Sprintf("vermagic %q is for kernel %s, not %s: the module was built against another kernel's headers", vm, rel, k.Release))
	}
	if n := info.First("name"); n != "" && normal(n) != normal(name) {
		r.Problems = append(r.Problems, fmt.Sprintf("the file %s.ko holds module %s: the kernel loads it under that name", name, n))
	}
	r.License = info.First("license")
	r.GPL = GPLCompatible(r.License)
	switch {
	case r.License == "":
		r.Problems = append(r.Problems, "no license: add MODULE_LICENSE(\"GPL\") (or the module's true license); without one the kernel taints with P and refuses GPL-only symbols")
	case !r.GPL:
		r.Notes = append(r.Notes, fmt.Sprintf("license %q is not GPL-compatible: loading it taints the kernel with P (proprietary module)", r.License))
	}
	for _, d := range strings.Split(info.First("depends"), ",") {
		if d == "" {
			continue
		}
		r.Depends = append(r.Depends, d)
		switch {
		case !nameRE.MatchString(d):
			r.Problems = append(r.Problems, fmt.Sprintf("depends lists %q, which is no module name", d))
		case slices.ContainsFunc(own, func(o string) bool { return normal(o) == normal(d) }):
		case k.Provided != nil && !k.Provided(d):
			r.Problems = append(r.Problems, fmt.Sprintf("depends on %s, which kernel %s does not have as a module", d, k.Release))
		case k.Packaged != nil && !k.Packaged(d):
			r.Problems = append(r.Problems, fmt.Sprintf("depends on %s, whose file is not in kernel %s's modules", d, k.Release))
		}
	}
	return r
}

// normal is a module name as the kernel compares them: - and _ alike.
func normal(name string) string { return strings.ReplaceAll(name, "-", "_") }

// SymversModules reads a kernel's Module.symvers (in its headers) and
// returns the names of the modules that export symbols, the only ones
// another module can depend on. A module depends on another only through
// the symbols it uses, so this is the kernel's list for depends.
func SymversModules(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the kernel's module list: %w", err)
	}
	defer f.Close()
	mods := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 || fields[2] == "vmlinux" {
			continue
		}
		mods[normal(filepath.Base(fields[2]))] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return mods, nil
}

// PackagedModules lists the module files under a kernel's
// /lib/modules/RELEASE directory (NAME.ko, .ko.xz, .ko.zst, .ko.gz), by
// module name.
func PackagedModules(dir string) (map[string]bool, error) {
	mods := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if base, ok := strings.CutSuffix(name, ext); ok {
				mods[normal(base)] = true
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the kernel's modules in %s: %w", dir, err)
	}
	return mods, nil
}

// Lookup turns a set of module names into a Kernel's Provided or
// Packaged function.
func Lookup(set map[string]bool) func(string) bool {
	return func(name string) bool { return set[normal(name)] }
}
