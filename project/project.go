package project

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// A Project is a module project: what to build, which modules result and
// what to do with them. Load makes one.
type Project struct {
	// Dir is the project's directory, absolute.
	Dir string
	// Name and Version name the project in reports (Version may be "").
	Name, Version string
	// Conf is the dkms.conf, read with DKMS's variables as references,
	// or nil; Manifest is kmodtest.json, or nil.
	Conf     *Conf
	Manifest *Manifest
	// Modules are the modules the build makes, in load order; nil for a
	// plain Kbuild project, whose modules are every .ko its build makes.
	Modules []Module
	// WarningsFail and ExtraWarnings are the manifest's.
	WarningsFail, ExtraWarnings bool
	// Tests are the manifest's test commands; KUnit its KUnit suites.
	Tests []Test
	KUnit []string
}

// A Module is one module of a project.
type Module struct {
	Name string
	// Location is where the build leaves NAME.ko, relative to the build
	// directory ("" for its top).
	Location string
	// Dest is dkms.conf's DEST_MODULE_LOCATION, for reports.
	Dest   string
	Params []ParamSet
}

// Load reads the project in dir: its dkms.conf, its kmodtest.json, both
// or neither. Errors name the file, the line where there is one, and the
// fix.
func Load(ctx context.Context, dir string) (*Project, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("project %s is a file: give the directory that holds dkms.conf, kmodtest.json or the Kbuild file", dir)
	}
	p := &Project{Dir: dir, Name: filepath.Base(dir)}
	if p.Conf, err = readConf(ctx, dir, placeholders()); err != nil {
		return nil, err
	}
	if p.Manifest, err = readManifest(dir); err != nil {
		return nil, err
	}
	if c := p.Conf; c != nil {
		if c.PackageName != "" {
			p.Name = c.PackageName
		}
		p.Version = c.PackageVersion
		if p.Modules, err = confModules(c); err != nil {
			return nil, err
		}
	}
	if m := p.Manifest; m != nil {
		if m.Name != "" {
			p.Name = m.Name
		}
		p.WarningsFail, p.ExtraWarnings, p.Tests, p.KUnit = m.WarningsFail, m.ExtraWarnings, m.Tests, m.KUnit
		if p.Modules, err = mergeModules(p.Conf, p.Modules, m.Modules); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
		}
	}
	if p.Conf == nil && !hasKbuild(dir) {
		return nil, fmt.Errorf("%s has no dkms.conf, kmodtest.json, Kbuild or Makefile: give a module project's directory", dir)
	}
	return p, nil
}

// hasKbuild reports whether dir has a Kbuild file or Makefile.
func hasKbuild(dir string) bool {
	for _, n := range []string{"Kbuild", "Makefile", "makefile", "GNUmakefile"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// confModules lists dkms.conf's modules by index. DKMS needs
// BUILT_MODULE_NAME[i] for every module; a location or destination
// without a name is a mistake.
func confModules(c *Conf) ([]Module, error) {
	n := max(len(c.BuiltModuleName), len(c.BuiltModuleLocation), len(c.DestModuleLocation))
	if n == 0 {
		return nil, fmt.Errorf("%s names no module: add BUILT_MODULE_NAME[0]=NAME (the NAME.ko the build makes)", c.File)
	}
	var mods []Module
	for i := 0; i < n; i++ {
		name := at(c.BuiltModuleName, i)
		if name == "" {
			return nil, fmt.Errorf("%s: BUILT_MODULE_NAME[%d] is not set, though module %d has a location: add BUILT_MODULE_NAME[%d]=NAME", c.File, i, i, i)
		}
		if strings.ContainsAny(name, "/ \t") || strings.HasSuffix(name, ".ko") {
			return nil, fmt.Errorf("%s: BUILT_MODULE_NAME[%d]=%q: give the module's name without .ko or a directory (BUILT_MODULE_LOCATION[%d] says where it is built)", c.File, i, name, i)
		}
		loc := strings.Trim(at(c.BuiltModuleLocation, i), "/")
		if strings.HasPrefix(filepath.Clean("/"+loc), "/..") || strings.Contains(loc, "..") {
			return nil, fmt.Errorf("%s: BUILT_MODULE_LOCATION[%d]=%q must be a directory inside the build directory", c.File, i, loc)
		}
		mods = append(mods, Module{Name: name, Location: loc, Dest: at(c.DestModuleLocation, i)})
	}
	return mods, nil
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

// mergeModules applies the manifest's modules to dkms.conf's: the
// manifest's order first (its location, when set, wins), then the rest
// of dkms.conf's. Without dkms.conf the manifest's list is the project's.
func mergeModules(c *Conf, conf []Module, specs []ModuleSpec) ([]Module, error) {
	if len(specs) == 0 {
		return conf, nil
	}
	var out []Module
	for _, s := range specs {
		m := Module{Name: s.Name, Location: strings.Trim(s.Location, "/"), Params: s.Params}
		if c != nil {
			i := slices.IndexFunc(conf, func(x Module) bool { return x.Name == s.Name })
			if i < 0 {
				return nil, fmt.Errorf("module %s is not one of dkms.conf's BUILT_MODULE_NAMEs (%s): add it there or fix the name", s.Name, strings.Join(moduleNames(conf), ", "))
			}
			if m.Location == "" {
				m.Location = conf[i].Location
			}
			m.Dest = conf[i].Dest
		}
		out = append(out, m)
	}
	for _, m := range conf {
		if !slices.ContainsFunc(out, func(x Module) bool { return x.Name == m.Name }) {
			out = append(out, m)
		}
	}
	return out, nil
}

func moduleNames(mods []Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

// A Kernel is what a project's per-kernel reading needs of a kernel.
type Kernel struct {
	// Release is uname -r.
	Release string
	// SourceDir is the kernel's headers tree on this host (it holds
	// .config).
	SourceDir string
	// Machine is the kernel's machine name (x86_64, aarch64), DKMS's
	// ${arch}.
	Machine string
}

// A Plan is how to build a project for one kernel.
type Plan struct {
	// Excluded, when not "", says why the project excludes the kernel
	// (BUILD_EXCLUSIVE_*): it is skipped, not failed.
	Excluded string
	// Make is the build command, "" for make -C KDIR M=DIR modules. It
	// keeps DKMS's variables as references for the build to expand.
	Make string
	// Dir is the directory, relative to the build's work directory,
	// that holds the project's copy and where Make runs: for a dkms.conf
	// project NAME/VERSION/build, so that ${dkms_tree} is the work
	// directory, as under DKMS.
	Dir string
	// Modules are the project's modules, in load order (nil: every .ko).
	Modules []Module
}

// ForKernel says how to build p for k. A dkms.conf is sourced again with
// k's values, as DKMS sources it for each kernel, for what depends on the
// kernel: its BUILD_EXCLUSIVE_* limits, MAKE_MATCH, conditionals.
func (p *Project) ForKernel(ctx context.Context, k Kernel) (*Plan, error) {
	pl := &Plan{Modules: p.Modules}
	if p.Manifest != nil && p.Manifest.Make != "" {
		pl.Make = p.Manifest.Make
	}
	if p.Conf == nil {
		return pl, nil
	}
	// DKMS's build directory: a MAKE names it as
	// ${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build.
	pl.Dir = filepath.Join(orDefault(p.Conf.PackageName, filepath.Base(p.Dir)), orDefault(p.Conf.PackageVersion, "0"), "build")
	vars := placeholders()
	vars["kernelver"], vars["kernel_source_dir"], vars["arch"] = k.Release, k.SourceDir, k.Machine
	c, err := readConf(ctx, p.Dir, vars)
	if err != nil {
		return nil, err
	}
	if pl.Excluded, err = excluded(c, k); err != nil || pl.Excluded != "" {
		return pl, err
	}
	if pl.Make == "" {
		// The command as Load read it (references kept), picked by
		// MAKE_MATCH as DKMS picks it.
		idx := 0
		for i, re := range c.MakeMatch {
			if re == "" || i >= len(p.Conf.Make) || p.Conf.Make[i] == "" {
				continue
			}
			rx, err := regexp.Compile(re)
			if err != nil {
				return nil, fmt.Errorf("%s: MAKE_MATCH[%d]=%q: %v: write an extended regular expression", c.File, i, re, err)
			}
			if rx.MatchString(k.Release) {
				idx = i
			}
		}
		pl.Make = at(p.Conf.Make, idx)
	}
	return pl, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// excluded applies dkms.conf's BUILD_EXCLUSIVE_* to k: the reason k is
// outside, or "".
func excluded(c *Conf, k Kernel) (string, error) {
	if re := c.ExclusiveKernel; re != "" {
		rx, err := regexp.Compile(re)
		if err != nil {
			return "", fmt.Errorf("%s: BUILD_EXCLUSIVE_KERNEL=%q: %v: write an extended regular expression", c.File, re, err)
		}
		if !rx.MatchString(k.Release) {
			return fmt.Sprintf("BUILD_EXCLUSIVE_KERNEL=%q does not match %s", re, k.Release), nil
		}
	}
	if min := c.ExclusiveKernelMin; min != "" && VersionLess(k.Release, min) {
		return fmt.Sprintf("BUILD_EXCLUSIVE_KERNEL_MIN=%s is above %s", min, k.Release), nil
	}
	if max := c.ExclusiveKernelMax; max != "" && VersionLess(max, k.Release) {
		return fmt.Sprintf("BUILD_EXCLUSIVE_KERNEL_MAX=%s is below %s", max, k.Release), nil
	}
	if re := c.ExclusiveArch; re != "" {
		rx, err := regexp.Compile(re)
		if err != nil {
			return "", fmt.Errorf("%s: BUILD_EXCLUSIVE_ARCH=%q: %v: write an extended regular expression", c.File, re, err)
		}
		if !rx.MatchString(k.Machine) {
			return fmt.Sprintf("BUILD_EXCLUSIVE_ARCH=%q does not match %s", re, k.Machine), nil
		}
	}
	if opts := strings.Fields(c.ExclusiveConfig); len(opts) > 0 {
		config, err := os.ReadFile(filepath.Join(k.SourceDir, ".config"))
		if err != nil {
			return "", fmt.Errorf("BUILD_EXCLUSIVE_CONFIG needs the kernel's .config: %w", err)
		}
		for _, o := range opts {
			name, negated := strings.CutPrefix(o, "!")
			set := configSet(string(config), name)
			if set == negated {
				want := "set"
				if negated {
					want = "not set"
				}
				return fmt.Sprintf("BUILD_EXCLUSIVE_CONFIG wants %s %s in %s", name, want, k.Release), nil
			}
		}
	}
	return "", nil
}

// configSet reports whether a .config sets name to y or m.
func configSet(config, name string) bool {
	for _, l := range strings.Split(config, "\n") {
		if l == name+"=y" || l == name+"=m" {
			return true
		}
	}
	return false
}

// VersionLess compares kernel releases as sort -V does, which DKMS uses
// for BUILD_EXCLUSIVE_KERNEL_MIN and _MAX: runs of digits by value, the
// rest byte by byte.
func VersionLess(a, b string) bool {
	for a != "" && b != "" {
		da, ra := splitRun(a)
		db, rb := splitRun(b)
		if isDigit(da[0]) && isDigit(db[0]) {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
		} else if da != db {
			return da < db
		}
		a, b = ra, rb
	}
	return a == "" && b != ""
}

// splitRun splits s after its first run of digits or of non-digits.
func splitRun(s string) (string, string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
