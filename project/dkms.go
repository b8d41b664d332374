package project

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// DKMSFile is the name of DKMS's project file.
const DKMSFile = "dkms.conf"

// A Conf is a dkms.conf as DKMS reads it. Arrays are indexed as in the
// file: Make[0] is MAKE[0] (or MAKE), and an index the file skips is "".
type Conf struct {
	// File is the dkms.conf's path.
	File           string
	PackageName    string
	PackageVersion string
	// BuiltModuleName, BuiltModuleLocation and DestModuleLocation are
	// BUILT_MODULE_NAME[i], BUILT_MODULE_LOCATION[i] and
	// DEST_MODULE_LOCATION[i].
	BuiltModuleName     []string
	BuiltModuleLocation []string
	DestModuleLocation  []string
	// Make is MAKE[i]; MakeMatch is MAKE_MATCH[i], the regular
	// expression on the kernel release that picks MAKE[i] over MAKE[0].
	Make      []string
	MakeMatch []string
	Clean     string
	// The BUILD_EXCLUSIVE_* limits: a kernel outside them is skipped.
	ExclusiveKernel    string // a regular expression on the release
	ExclusiveKernelMin string // the lowest release, in version order
	ExclusiveKernelMax string // the highest release
	ExclusiveArch      string // a regular expression on the machine name
	ExclusiveConfig    string // CONFIG_X options the kernel must have (!CONFIG_X: must not)
	Autoinstall        bool
	// Vars holds every other variable the file sets, arrays as NAME[i].
	Vars map[string]string
}

// The variables DKMS sets before it sources dkms.conf.
var dkmsVars = []string{"kernelver", "kernel_source_dir", "dkms_tree", "source_tree", "arch"}

// placeholders gives each of DKMS's variables its own reference as value,
// so that what refers to them keeps the reference.
func placeholders() map[string]string {
	m := map[string]string{}
	for _, v := range dkmsVars {
		m[v] = "${" + v + "}"
	}
	return m
}

// sourceScript sources dkms.conf ($1) with DKMS's variables in the
// environment and prints every variable it set (not those already set)
// as NAME<TAB>INDEX<TAB>VALUE
// records ended by NUL (INDEX is empty for a plain variable).
const sourceScript = `
__known=" $(compgen -v | tr '\n' ' ') "
# As under DKMS, the file's status does not matter, and what it prints is
# not ours to read.
. "$1" >/dev/null
for __v in $(compgen -v); do
	case "$__known" in *" $__v "*) continue ;; esac
	case "$__v" in __*|_|PIPESTATUS|BASH_*|FUNCNAME|COMP_*) continue ;; esac
	if [[ "$(declare -p "$__v" 2>/dev/null)" == "declare -"[aA]* ]]; then
		eval '__idx=("${!'"$__v"'[@]}")'
		for __i in "${__idx[@]}"; do
			eval '__val=${'"$__v"'[$__i]}'
			printf '%s\t%s\t%s\0' "$__v" "$__i" "$__val"
		done
	else
		printf '%s\t\t%s\0' "$__v" "${!__v}"
	fi
done
`

// sourceConf sources file with bash, as DKMS does, with vars (DKMS's
// variables) set, and returns what it set: plain variables by name,
// arrays as NAME[i].
func sourceConf(ctx context.Context, file string, vars map[string]string) (map[string]string, error) {
	if _, err := exec.LookPath("bash"); err != nil {
		return nil, fmt.Errorf("read %s: bash is needed to read it as DKMS does: install bash", file)
	}
	// A syntax error first, with bash's own line number.
	check := exec.CommandContext(ctx, "bash", "-n", file)
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %s: fix the shell syntax (DKMS sources this file with bash; bash -n %s shows the same)",
			file, strings.TrimSpace(strings.ReplaceAll(string(out), file+": ", "")), filepath.Base(file))
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", sourceScript, "bash", file)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C"}
	for _, k := range dkmsVars {
		cmd.Env = append(cmd.Env, k+"="+vars[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if msg := strings.TrimSpace(stderr.String()); msg != "" || err != nil {
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s: %s: every line must run without error when DKMS sources the file (it runs with kernelver, kernel_source_dir, dkms_tree, source_tree and arch set)",
			file, strings.ReplaceAll(msg, file+": ", ""))
	}
	got := map[string]string{}
	for _, rec := range strings.Split(stdout.String(), "\x00") {
		name, rest, ok := strings.Cut(rec, "\t")
		if !ok {
			continue
		}
		idx, val, _ := strings.Cut(rest, "\t")
		if idx != "" {
			name += "[" + idx + "]"
		}
		got[name] = val
	}
	return got, nil
}

// parseConf turns the variables a dkms.conf set into a Conf. In bash,
// MAKE="x" sets MAKE[0], so the two are one.
func parseConf(file string, vars map[string]string) (*Conf, error) {
	c := &Conf{File: file, Vars: map[string]string{}}
	arrays := map[string]*[]string{
		"BUILT_MODULE_NAME":     &c.BuiltModuleName,
		"BUILT_MODULE_LOCATION": &c.BuiltModuleLocation,
		"DEST_MODULE_LOCATION":  &c.DestModuleLocation,
		"MAKE":                  &c.Make,
		"MAKE_MATCH":            &c.MakeMatch,
	}
	scalars := map[string]*string{
		"PACKAGE_NAME":               &c.PackageName,
		"PACKAGE_VERSION":            &c.PackageVersion,
		"CLEAN":                      &c.Clean,
		"BUILD_EXCLUSIVE_KERNEL":     &c.ExclusiveKernel,
		"BUILD_EXCLUSIVE_KERNEL_MIN": &c.ExclusiveKernelMin,
		"BUILD_EXCLUSIVE_KERNEL_MAX": &c.ExclusiveKernelMax,
		"BUILD_EXCLUSIVE_ARCH":       &c.ExclusiveArch,
		"BUILD_EXCLUSIVE_CONFIG":     &c.ExclusiveConfig,
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := vars[n]
		base, idx, isArray := splitIndex(n)
		if arr := arrays[base]; arr != nil {
			if idx < 0 {
				idx = 0
			}
			if idx > 1000 {
				return nil, fmt.Errorf("%s: %s has index %d: DKMS arrays count modules, keep the index below 1000", file, n, idx)
			}
			for len(*arr) <= idx {
				*arr = append(*arr, "")
			}
			(*arr)[idx] = v
			continue
		}
		if p := scalars[base]; p != nil {
			if isArray && idx != 0 {
				return nil, fmt.Errorf("%s: %s is not an array: write %s=%q", file, n, base, v)
			}
			*p = v
			continue
		}
		if base == "AUTOINSTALL" {
			c.Autoinstall = strings.EqualFold(v, "yes")
			continue
		}
		if slices.Contains(dkmsVars, n) {
			continue
		}
		c.Vars[n] = v
	}
	return c, nil
}

// splitIndex splits "NAME[3]" into NAME and 3; a plain name gives -1.
func splitIndex(n string) (string, int, bool) {
	i := strings.IndexByte(n, '[')
	if i < 0 || !strings.HasSuffix(n, "]") {
		return n, -1, false
	}
	idx, err := strconv.Atoi(n[i+1 : len(n)-1])
	if err != nil {
		return n, -1, false
	}
	return n[:i], idx, true
}

// readConf reads dir's dkms.conf with vars set, or returns nil, nil when
// dir has none.
func readConf(ctx context.Context, dir string, vars map[string]string) (*Conf, error) {
	file := filepath.Join(dir, DKMSFile)
	if _, err := os.Stat(file); os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	got, err := sourceConf(ctx, file, vars)
	if err != nil {
		return nil, err
	}
	return parseConf(file, got)
}
