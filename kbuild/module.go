package kbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// A ModuleBuild is a built out-of-tree module.
type ModuleBuild struct {
	// Ko is the module file inside the cache (the first, by name, when
	// the build makes several; Kos lists them all).
	Ko  string
	Kos []string
	// Warnings are the compiler's and modpost's warning lines.
	Warnings []string
	Duration time.Duration
	Cached   bool
	// GcovDir holds the .gcno files and the sources they describe when
	// the module was built with gcov profiling (GCOV_PROFILE=y), else "".
	GcovDir string
	// Replayed says Kbuild's recorded commands rebuilt it (BuildIn), not
	// make: only the changed files were compiled, so only their
	// warnings are in Warnings.
	Replayed bool
}

// A BuildError is a module that failed to compile.
type BuildError struct {
	Kernel string
	Cmd    string
	// Output holds the compiler's lines: errors, warnings, notes and
	// their context (or the tail of the output if none are recognised).
	Output []string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("build module for kernel %s failed: %s\n  %s", e.Kernel, e.Cmd, strings.Join(e.Output, "\n  "))
}

// skipArtifact reports build products that must not count as source (a
// developer may have run make in srcDir).
func skipArtifact(name string) bool {
	for _, suf := range []string{".o", ".ko", ".mod", ".mod.c", ".cmd", ".symvers", ".order", ".tmp", ".d"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return name == ".tmp_versions" || name == ".git"
}

// SourceFiles lists the regular files of a module source directory,
// relative and sorted, leaving out build products: what a build copies
// and what kmodtest watch watches.
func SourceFiles(srcDir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != srcDir && skipArtifact(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(srcDir, p)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// KeepGcov moves the .gcno files of a profiled build, with the (patched)
// sources they describe, into entry/gcov, and returns "gcov"; a build
// without them gives "".
func KeepGcov(work, entry string, sources []string) (string, error) {
	notes, _ := filepath.Glob(filepath.Join(work, "*.gcno"))
	if len(notes) == 0 {
		return "", nil
	}
	dir := filepath.Join(entry, "gcov")
	if err := CopyFiles(work, dir, sources); err != nil {
		return "", err
	}
	for _, n := range notes {
		if err := os.Rename(n, filepath.Join(dir, filepath.Base(n))); err != nil {
			return "", err
		}
	}
	return "gcov", nil
}

// A Spec says how to build a module project other than kmod/: its own
// make command, where its copy lies in the work directory and which
// modules it must make. The zero Spec is make -C KDIR M=work modules,
// every .ko it makes.
type Spec struct {
	// Make is the project's build command, run with bash in Dir, or ""
	// for make -C KDIR M=Dir modules. As under DKMS, a leading "make"
	// gets KERNELRELEASE=<release> (and here the kernel's make
	// variables), and the variables of a dkms.conf MAKE are set:
	// kernelver, kernel_source_dir, dkms_tree (the work directory),
	// source_tree and arch, with the paths of where the build runs (the
	// host or the build root).
	Make string
	// Dir is the project's copy, relative to the work directory; "" for
	// the work directory itself.
	Dir string
	// Modules are the .ko files the build must make, relative to Dir;
	// nil takes every .ko under Dir.
	Modules []string
	// W1 adds W=1 (the kernel's extra warnings) to the default command.
	W1 bool
}

// Equal reports whether s and o describe the same build.
func (s Spec) Equal(o Spec) bool {
	return s.Make == o.Make && s.Dir == o.Dir && s.W1 == o.W1 && slices.Equal(s.Modules, o.Modules) && (s.Modules == nil) == (o.Modules == nil)
}

// Make runs the module build of kmod/ in work (make -C KDIR M=work W=1
// modules) and returns the .ko files, sorted, the make command line and
// its output with paths relative to the source.
func Make(ctx context.Context, t Target, work string) (kos []string, cmdline, out string, err error) {
	return MakeSpec(ctx, t, work, Spec{W1: true})
}

// MakeSpec runs the build s describes in work and returns the .ko
// files, the command line and its output with paths relative to the
// source. A module s names that the build did not make is a BuildError.
func MakeSpec(ctx context.Context, t Target, work string, s Spec) (kos []string, cmdline, out string, err error) {
	cmdline, out, err = runMake(ctx, t, work, s)
	// Show paths relative to the module source, as the user knows it.
	src := filepath.Join(work, s.Dir)
	out = strings.ReplaceAll(out, src+"/", "")
	out = strings.ReplaceAll(out, filepath.Join(rootSrcDir, s.Dir)+"/", "")
	if err != nil {
		var ce *proc.CommandError
		if errors.As(err, &ce) {
			return nil, cmdline, out, &BuildError{Kernel: t.Name, Cmd: cmdline, Output: compilerLines(out)}
		}
		return nil, cmdline, out, err
	}
	if s.Modules != nil {
		for _, m := range s.Modules {
			ko := filepath.Join(src, m)
			if _, err := os.Stat(ko); err != nil {
				return nil, cmdline, out, &BuildError{Kernel: t.Name, Cmd: cmdline, Output: append([]string{
					fmt.Sprintf("the build made no %s: make succeeded, but the module the project names is not there (check BUILT_MODULE_NAME and BUILT_MODULE_LOCATION, or the manifest's modules)", m)},
					proc.TailLines(out, 10)...)}
			}
			kos = append(kos, ko)
		}
		return kos, cmdline, out, nil
	}
	kos, err = findKos(src)
	if err != nil {
		return nil, cmdline, out, err
	}
	if len(kos) == 0 {
		return nil, cmdline, out, &BuildError{Kernel: t.Name, Cmd: cmdline, Output: append([]string{"make succeeded but produced no .ko"}, proc.TailLines(out, 20)...)}
	}
	return kos, cmdline, out, nil
}

// findKos lists the .ko files under dir, sorted.
func findKos(dir string) ([]string, error) {
	var kos []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".ko") {
			kos = append(kos, p)
		}
		return nil
	})
	slices.Sort(kos)
	return kos, err
}

// BuildIn builds the module in srcDir for t inside work, a build
// directory the caller keeps between builds (kmodtest watch, and the
// cache's per-source build directories): only files whose content
// changed are copied over, so Kbuild recompiles just what they affect,
// or a replay of Kbuild's recorded commands does (see replay). Nothing
// is cached; the .ko stays in work.
//
// A build that was cut off (Ctrl-C, a timeout) may leave half-written
// objects that make would trust by their time stamps, so the directory
// is marked while no build runs in it (replayMarker), and a directory
// without the mark is emptied first.
func BuildIn(ctx context.Context, t Target, srcDir, work string) (*ModuleBuild, error) {
	start := time.Now()
	files, err := SourceFiles(srcDir)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no source files in %s", srcDir)
	}
	marker := filepath.Join(work, replayMarker)
	_, err = os.Stat(marker)
	settled := err == nil
	if !settled {
		if err := os.RemoveAll(work); err != nil {
			return nil, fmt.Errorf("empty build dir: %w", err)
		}
	}
	changed, err := syncFiles(srcDir, work, files)
	if err != nil {
		return nil, fmt.Errorf("copy source to build dir: %w", err)
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var kos []string
	var out string
	replayed := false
	if settled {
		kos, out, replayed, err = replay(ctx, t, work, changed)
	}
	if !replayed {
		kos, _, out, err = Make(ctx, t, work)
	}
	// A finished build, even a failed one, leaves the directory
	// consistent (the compiler removes what it could not finish);
	// anything else, a cut-off build above all, does not.
	var be *BuildError
	warnings := WarningLines(out)
	if err == nil || errors.As(err, &be) {
		warnings = mergeWarnings(readWarnings(work), warnings, rebuilt(changed, out))
		if werr := writeWarnings(work, warnings); werr != nil {
			return nil, werr
		}
		if werr := os.WriteFile(marker, nil, 0o644); werr != nil {
			return nil, werr
		}
	}
	if err != nil {
		if be != nil {
			return nil, err
		}
		return nil, fmt.Errorf("build module %s for kernel %s: %w", srcDir, t.Name, cachefs.CheckDiskFull(work, err))
	}
	return &ModuleBuild{Ko: kos[0], Kos: kos, Warnings: warnings, Duration: time.Since(start), Replayed: replayed}, nil
}

// warningsFile keeps, in a build directory, the warnings of the sources
// the last build there compiled or kept: an incremental build compiles
// only what changed, and the others' warnings must not vanish with it.
const warningsFile = ".kmodtest-warnings"

func readWarnings(work string) []string {
	data, err := os.ReadFile(filepath.Join(work, warningsFile))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func writeWarnings(work string, lines []string) error {
	data := strings.Join(lines, "\n")
	if data != "" {
		data += "\n"
	}
	return os.WriteFile(filepath.Join(work, warningsFile), []byte(data), 0o644)
}

// rebuilt returns the source files a build compiled: the changed ones
// (a replay compiles exactly those) and those whose object make
// printed ("  CC [M]  foo.o").
func rebuilt(changed []string, out string) map[string]bool {
	files := map[string]bool{}
	for _, f := range changed {
		files[f] = true
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "CC" && strings.HasSuffix(f[len(f)-1], ".o") {
			files[strings.TrimSuffix(f[len(f)-1], ".o")+".c"] = true
		}
	}
	return files
}

// mergeWarnings returns the warnings of a build: those it printed, and
// the earlier ones of files it did not compile again. Modpost runs on
// every build, so its earlier lines are dropped. An edge it gets wrong:
// a header's warning printed for a source that no longer includes it
// stays until a build compiles everything (the build directory is
// emptied after a cut-off build, or by kmodtest cache clean).
func mergeWarnings(prev, now []string, compiled map[string]bool) []string {
	merged := slices.Clone(now)
	for _, l := range prev {
		file, _, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, "WARNING: modpost: ") || compiled[file] || slices.Contains(merged, l) {
			continue
		}
		merged = append(merged, l)
	}
	return merged
}

// syncFiles copies the listed files from src to dst where dst lacks them
// or holds other content, and returns those; unchanged files keep their
// time stamps.
func syncFiles(src, dst string, files []string) ([]string, error) {
	var changed []string
	for _, rel := range files {
		a, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(a, b) {
			changed = append(changed, rel)
		}
	}
	return changed, CopyFiles(src, dst, changed)
}

// CopyFiles copies the listed files from src to dst.
func CopyFiles(src, dst string, files []string) error {
	for _, rel := range files {
		from := filepath.Join(src, rel)
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		in, err := os.Open(from)
		if err != nil {
			return err
		}
		fi, err := in.Stat()
		if err != nil {
			in.Close()
			return err
		}
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()|0o200)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// kernelCC returns the compiler named in the headers' .kernelvariables
// ("gcc-12", "x86_64-linux-gnu-gcc-16"), or "gcc" if it names none.
func kernelCC(kdir string) string {
	data, err := os.ReadFile(filepath.Join(kdir, ".kernelvariables"))
	if err != nil {
		return "gcc"
	}
	cross := ""
	cc := ""
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "override "))
		v = strings.TrimSpace(v)
		switch k {
		case "CROSS_COMPILE":
			if !strings.Contains(v, "$") {
				cross = v
			}
		case "CC":
			f := strings.Fields(v)
			if len(f) > 0 {
				cc = f[len(f)-1]
			}
		}
	}
	if cc == "" {
		return "gcc"
	}
	return strings.ReplaceAll(cc, "$(CROSS_COMPILE)", cross)
}

// makeCC returns the CC= override among the make variables, or "".
func makeCC(makeVars []string) string {
	for _, v := range makeVars {
		if cc, ok := strings.CutPrefix(v, "CC="); ok {
			return cc
		}
	}
	return ""
}

// ToolchainID names the compiler a build uses, for the module cache key:
// the host compiler's version line, or the build root entry.
func ToolchainID(ctx context.Context, t Target) (string, error) {
	if t.Root != "" {
		return "root " + filepath.Base(t.Root), nil
	}
	cc := makeCC(t.MakeVars)
	if cc == "" {
		cc = CrossCompile(t.Arch) + kernelCC(t.KDIR)
	}
	if err := proc.NeedTool(cc); err != nil {
		return "", fmt.Errorf("kernel %s is built on the host with %s: %w", t.Name, cc, err)
	}
	out, err := proc.Output(proc.Command(ctx, cc, "--version"))
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", cc, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return "host " + first, nil
}

// needsPahole reports whether module builds for kdir generate BTF, which
// runs pahole on the build machine.
func needsPahole(kdir string) bool {
	if _, err := os.Stat(filepath.Join(kdir, "vmlinux")); err != nil {
		return false
	}
	data, err := os.ReadFile(filepath.Join(kdir, ".config"))
	return err == nil && bytes.Contains(data, []byte("\nCONFIG_DEBUG_INFO_BTF_MODULES=y"))
}

// runMake builds the module in work as s says: on the host, or inside
// the build root in a private mount namespace (unshare -m; unshare -r -m
// when not root) with /proc mounted, since objtool reads it, and the
// kernel tree and work directory bind-mounted at fixed places.
func runMake(ctx context.Context, t Target, work string, s Spec) (cmdline, output string, err error) {
	if err := proc.NeedTool("make"); err != nil {
		return "", "", err
	}
	kdir, srcRoot := t.KDIR, work
	if t.Root != "" {
		kdir, srcRoot = rootKernelDir+"/usr/src/linux-headers-"+t.Release, rootSrcDir
	}
	argv, env := makeCommand(t, s, kdir, srcRoot)
	cmdline = strings.Join(argv, " ")
	if s.Make != "" {
		cmdline = argv[len(argv)-1]
	}
	var cmd *exec.Cmd
	if t.Root == "" {
		if needsPahole(t.KDIR) {
			if err := proc.NeedTool("pahole"); err != nil {
				return "", "", fmt.Errorf("kernel %s generates BTF for modules: %w", t.Name, err)
			}
		}
		cmd = proc.Command(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		cmd.Env = append(cmd.Env, env...)
	} else {
		if err := proc.NeedTool("unshare"); err != nil {
			return "", "", err
		}
		root := filepath.Join(t.Root, "root")
		cmdline = "chroot " + root + " " + cmdline
		script := `set -e
root=$1; tree=$2; src=$3; shift 3
devbound=
[ -c "$root/dev/null" ] || { mount --rbind /dev "$root/dev"; devbound=1; }
mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc"
mount --bind "$tree" "$root` + rootKernelDir + `"
mount --bind "$src" "$root` + rootSrcDir + `"
status=0
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LC_ALL=C "$@" || status=$?
# Take the mounts down again: with --propagation unchanged (see
# buildPropagation) a shared parent mount would otherwise keep copies.
umount -R "$root` + rootSrcDir + `" "$root` + rootKernelDir + `" "$root/proc" 2>/dev/null || true
[ -z "$devbound" ] || umount -R "$root/dev" 2>/dev/null || true
exit $status`
		uargs := []string{"-m", "--propagation", buildPropagation()}
		if os.Geteuid() != 0 {
			uargs = append([]string{"-r"}, uargs...)
		}
		uargs = append(uargs, "sh", "-c", script, "sh", root, t.Tree, work)
		uargs = append(uargs, env...)
		uargs = append(uargs, argv...)
		cmd = proc.Command(ctx, "unshare", uargs...)
		// mount and chroot live in /usr/sbin, which a normal user's
		// PATH often lacks.
		cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	}
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := proc.Run(cmd); err != nil {
		out := buf.String()
		if strings.Contains(out, "No space left on device") {
			return cmdline, out, cachefs.CheckDiskFull(work, fmt.Errorf("%s: %s", cmdline, strings.Join(proc.TailLines(out, 5), "; ")))
		}
		return cmdline, out, &proc.CommandError{Cmd: cmdline, Err: err, Output: proc.TailLines(out, 25)}
	}
	return cmdline, buf.String(), nil
}

// makeCommand returns the command of s for kernel tree kdir and work
// directory srcRoot as seen where the build runs, and the environment it
// needs (NAME=VALUE). The default is make -C kdir M=dir modules; a
// project's command runs with bash in its directory, with DKMS's
// variables set and, as DKMS does, KERNELRELEASE (and the kernel's make
// variables) added to a leading make.
func makeCommand(t Target, s Spec, kdir, srcRoot string) (argv, env []string) {
	dir := filepath.Join(srcRoot, s.Dir)
	vars := append(archMakeVars(t.Arch), t.MakeVars...)
	if s.Make == "" {
		argv = []string{"make", "-C", kdir, "M=" + dir}
		if s.W1 {
			argv = append(argv, "W=1")
		}
		argv = append(argv, vars...)
		return append(argv, "modules"), nil
	}
	command := s.Make
	if rest, ok := strings.CutPrefix(command, "make"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		command = "make " + strings.Join(append([]string{"KERNELRELEASE=" + t.Release}, vars...), " ") + rest
	}
	env = []string{
		"kernelver=" + t.Release,
		"kernel_source_dir=" + kdir,
		"dkms_tree=" + srcRoot,
		"source_tree=/usr/src",
		"arch=" + machine(t.Arch),
	}
	return []string{"bash", "-c", "cd " + shellQuote(dir) + " && " + command}, env
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// machine is uname -m of a kernel of architecture a, DKMS's ${arch}.
func machine(a arch.Arch) string {
	if a == arch.ARM64 || (a == "" && arch.Host() == arch.ARM64) {
		return "aarch64"
	}
	return "x86_64"
}

// diagRE matches a compiler, linker or modpost diagnostic line.
var diagRE = regexp.MustCompile(`(: (fatal error|error|warning|note): )|^(ERROR|WARNING): modpost: |: In function |^In file included from |^\s+from |: undefined reference`)

// contextRE matches gcc's source context lines ("   12 | code", "      |  ^~~").
var contextRE = regexp.MustCompile(`^\s*[0-9]*\s+\|`)

// compilerLines picks the diagnostics and their context out of make's
// output; make's own "***" lines are kept too. Without any, it returns the
// output's tail so the failure is never silent.
func compilerLines(out string) []string {
	var lines []string
	diags := 0
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, " \r")
		if diagRE.MatchString(l) {
			diags++
			lines = append(lines, l)
		} else if contextRE.MatchString(l) || strings.Contains(l, "***") {
			lines = append(lines, l)
		}
	}
	if diags == 0 {
		return proc.TailLines(out, 25)
	}
	return lines
}

// WarningLines returns the compiler's and modpost's warning lines.
func WarningLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ": warning: ") || strings.HasPrefix(l, "WARNING: modpost: ") {
			lines = append(lines, strings.TrimRight(l, " \r"))
		}
	}
	return lines
}
