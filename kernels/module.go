package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
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

// moduleManifest is the manifest of a built module entry.
type moduleManifest struct {
	Kernel   string        `json:"kernel"`
	Release  string        `json:"release"`
	Kos      []string      `json:"kos"`
	SHA256   []string      `json:"sha256"`
	Warnings []string      `json:"warnings"`
	Duration time.Duration `json:"duration"`
	Gcov     string        `json:"gcov,omitempty"`
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
func SourceFiles(srcDir string) ([]string, error) { return sourceFiles(srcDir) }

// sourceFiles lists the regular files of srcDir, relative, sorted.
func sourceFiles(srcDir string) ([]string, error) {
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

// moduleKey hashes everything a build depends on: the source files (names
// and contents), the patch, the kernel release and package version, the
// toolchain and the make variables.
func moduleKey(f *Fetched, srcDir string, files []string, patch, toolchain string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "kernel %s\nrelease %s\nversion %s\ntoolchain %s\nmake %q\nkdir %s\n",
		f.Kernel.Name, f.Release, f.Version, toolchain, f.Kernel.MakeVars, f.KDIR)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(srcDir, rel))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %q %d\n", rel, len(data))
		h.Write(data)
	}
	if patch != "" {
		data, err := os.ReadFile(patch)
		if err != nil {
			return "", fmt.Errorf("read patch: %w", err)
		}
		fmt.Fprintf(h, "patch %d\n", len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// BuildModule builds the out-of-tree module in srcDir for f with W=1 and
// returns the .ko inside the cache. srcDir is copied to a private
// directory first and patch, if not "", is applied there with patch -p1,
// so srcDir is never written. The result is cached by a hash of the
// source, the patch, the kernel and the toolchain, so only a changed
// source is rebuilt.
func (c *Cache) BuildModule(ctx context.Context, f *Fetched, srcDir string, patch string) (*ModuleBuild, error) {
	mb, err := c.buildModule(ctx, f, srcDir, patch)
	if err == nil && !mb.Cached {
		c.prune()
	}
	if err != nil {
		var be *BuildError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, fmt.Errorf("build module %s for kernel %s: %w", srcDir, f.Kernel.Name, checkDiskFull(c.Dir, err))
	}
	return mb, nil
}

func (c *Cache) buildModule(ctx context.Context, f *Fetched, srcDir, patch string) (*ModuleBuild, error) {
	if err := c.claim(); err != nil {
		return nil, err
	}
	start := time.Now()
	srcDir, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, err
	}
	if patch != "" {
		if patch, err = filepath.Abs(patch); err != nil {
			return nil, err
		}
	}
	files, err := sourceFiles(srcDir)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no source files in %s", srcDir)
	}
	toolchain, err := toolchainID(ctx, f)
	if err != nil {
		return nil, err
	}
	key, err := moduleKey(f, srcDir, files, patch, toolchain)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(c.Dir, "modules", f.Kernel.Name+"-"+key)
	unlock, err := cachefs.Lock(ctx, filepath.Join(c.Dir, "locks", "module-"+f.Kernel.Name+"-"+key+".lock"), c.logf)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if m, err := readModuleManifest(final); err == nil {
		return &ModuleBuild{
			Ko: filepath.Join(final, m.Kos[0]), Kos: joinAll(final, m.Kos),
			Warnings: m.Warnings, Duration: time.Since(start), Cached: true,
			GcovDir: joinIf(final, m.Gcov),
		}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		c.logf("cache: module %s for %s corrupt (%v), rebuilding", filepath.Base(srcDir), f.Kernel.Name, err)
	}

	st, err := cachefs.Stage(c.Dir, final)
	if err != nil {
		return nil, err
	}
	defer st.Discard()
	tmp := st.Dir
	work := filepath.Join(tmp, "src")
	if err := copyFiles(srcDir, work, files); err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if patch != "" {
		if err := needTool("patch"); err != nil {
			return nil, err
		}
		out, err := proc.CombinedOutput(proc.Command(ctx, "patch", "-p1", "--batch", "--forward", "-d", work, "-i", patch))
		if err != nil {
			return nil, commandError("patch -p1 -i "+patch, err, string(out))
		}
	}
	kos, cmdline, out, err := c.make(ctx, f, work)
	if err != nil {
		return nil, err
	}
	m := moduleManifest{Kernel: f.Kernel.Name, Release: f.Release, Warnings: warningLines(out), Duration: time.Since(start)}
	for _, ko := range kos {
		name := filepath.Base(ko)
		if err := os.Rename(ko, filepath.Join(tmp, name)); err != nil {
			return nil, err
		}
		_, sum, err := cachefs.FileSHA256(filepath.Join(tmp, name))
		if err != nil {
			return nil, err
		}
		m.Kos = append(m.Kos, name)
		m.SHA256 = append(m.SHA256, sum)
	}
	if m.Gcov, err = keepGcov(work, tmp, files); err != nil {
		return nil, fmt.Errorf("keep gcov notes: %w", err)
	}
	// Keep the build directory's log for debugging, drop the rest.
	if err := os.WriteFile(filepath.Join(tmp, "build.log"), []byte(cmdline+"\n"+out), 0o644); err != nil {
		return nil, err
	}
	if err := cachefs.RemoveAll(c.Dir, work); err != nil {
		return nil, err
	}
	if err := st.Commit(m); err != nil {
		return nil, err
	}
	c.logf("build %s for %s: %s in %.1fs (%d warnings)", filepath.Base(srcDir), f.Kernel.Name, strings.Join(m.Kos, " "), time.Since(start).Seconds(), len(m.Warnings))
	return &ModuleBuild{
		Ko: filepath.Join(final, m.Kos[0]), Kos: joinAll(final, m.Kos),
		Warnings: m.Warnings, Duration: time.Since(start),
		GcovDir: joinIf(final, m.Gcov),
	}, nil
}

// keepGcov moves the .gcno files of a profiled build, with the (patched)
// sources they describe, into entry/gcov, and returns "gcov"; a build
// without them gives "".
func keepGcov(work, entry string, sources []string) (string, error) {
	notes, _ := filepath.Glob(filepath.Join(work, "*.gcno"))
	if len(notes) == 0 {
		return "", nil
	}
	dir := filepath.Join(entry, "gcov")
	if err := copyFiles(work, dir, sources); err != nil {
		return "", err
	}
	for _, n := range notes {
		if err := os.Rename(n, filepath.Join(dir, filepath.Base(n))); err != nil {
			return "", err
		}
	}
	return "gcov", nil
}

// joinIf joins dir and name, or gives "" for an empty name.
func joinIf(dir, name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

// make runs the module build in work and returns the .ko files, sorted,
// the make command line and its output with paths relative to the source.
func (c *Cache) make(ctx context.Context, f *Fetched, work string) (kos []string, cmdline, out string, err error) {
	cmdline, out, err = c.runMake(ctx, f, work)
	// Show paths relative to the module source, as the user knows it.
	out = strings.ReplaceAll(out, work+"/", "")
	out = strings.ReplaceAll(out, rootSrcDir+"/", "")
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) {
			return nil, cmdline, out, &BuildError{Kernel: f.Kernel.Name, Cmd: cmdline, Output: compilerLines(out)}
		}
		return nil, cmdline, out, err
	}
	kos, _ = filepath.Glob(filepath.Join(work, "*.ko"))
	if len(kos) == 0 {
		return nil, cmdline, out, &BuildError{Kernel: f.Kernel.Name, Cmd: cmdline, Output: append([]string{"make succeeded but produced no .ko"}, tailLines(out, 20)...)}
	}
	slices.Sort(kos)
	return kos, cmdline, out, nil
}

// BuildModuleIn builds the module in srcDir for f inside work, a build
// directory the caller keeps between builds (kmodtest watch): only files
// whose content changed are copied over, so Kbuild recompiles just what
// they affect. Nothing is cached; the .ko stays in work.
func (c *Cache) BuildModuleIn(ctx context.Context, f *Fetched, srcDir, work string) (*ModuleBuild, error) {
	start := time.Now()
	files, err := sourceFiles(srcDir)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no source files in %s", srcDir)
	}
	changed, err := syncFiles(srcDir, work, files)
	if err != nil {
		return nil, fmt.Errorf("copy source to build dir: %w", err)
	}
	kos, out, replayed, err := c.replay(ctx, f, work, changed)
	if !replayed {
		// The marker goes before make and comes back after a success:
		// a make that stopped half way may leave .cmd files behind.
		_ = os.Remove(filepath.Join(work, replayMarker))
		kos, _, out, err = c.make(ctx, f, work)
		if err == nil {
			err = os.WriteFile(filepath.Join(work, replayMarker), nil, 0o644)
		}
	}
	if err != nil {
		var be *BuildError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, fmt.Errorf("build module %s for kernel %s: %w", srcDir, f.Kernel.Name, checkDiskFull(work, err))
	}
	return &ModuleBuild{Ko: kos[0], Kos: kos, Warnings: warningLines(out), Duration: time.Since(start)}, nil
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
	return changed, copyFiles(src, dst, changed)
}

func joinAll(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

// readModuleManifest reads and verifies a module entry.
func readModuleManifest(dir string) (*moduleManifest, error) {
	var m moduleManifest
	if err := cachefs.LoadManifest(dir, &m); err != nil {
		return nil, err
	}
	if len(m.Kos) == 0 || len(m.Kos) != len(m.SHA256) {
		return nil, errors.New("incomplete manifest")
	}
	for i, ko := range m.Kos {
		_, sum, err := cachefs.FileSHA256(filepath.Join(dir, ko))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", ko, errors.Unwrap(err))
		}
		if sum != m.SHA256[i] {
			return nil, fmt.Errorf("%s sha256 mismatch", ko)
		}
	}
	cachefs.MarkUsed(dir)
	return &m, nil
}

// copyFiles copies the listed files from src to dst.
func copyFiles(src, dst string, files []string) error {
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

// makeCC returns the CC= override among the kernel's MakeVars, or "".
func makeCC(k Kernel) string {
	for _, v := range k.MakeVars {
		if cc, ok := strings.CutPrefix(v, "CC="); ok {
			return cc
		}
	}
	return ""
}

// toolchainID names the compiler a build uses, for the module cache key:
// the host compiler's version line, or the build root entry.
func toolchainID(ctx context.Context, f *Fetched) (string, error) {
	if f.root != "" {
		return "root " + filepath.Base(f.root), nil
	}
	cc := makeCC(f.Kernel)
	if cc == "" {
		cc = crossCompile(f.Kernel) + kernelCC(f.KDIR)
	}
	if err := needTool(cc); err != nil {
		return "", fmt.Errorf("kernel %s is built on the host with %s: %w", f.Kernel.Name, cc, err)
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

// runMake builds the module in work: on the host, or inside the build root
// in a private mount namespace (unshare -m; unshare -r -m when not root)
// with /proc mounted, since objtool reads it, and the kernel tree and
// source bind-mounted at fixed places.
func (c *Cache) runMake(ctx context.Context, f *Fetched, work string) (cmdline, output string, err error) {
	if err := needTool("make"); err != nil {
		return "", "", err
	}
	var cmd *exec.Cmd
	if f.root == "" {
		if needsPahole(f.KDIR) {
			if err := needTool("pahole"); err != nil {
				return "", "", fmt.Errorf("kernel %s generates BTF for modules: %w", f.Kernel.Name, err)
			}
		}
		args := append([]string{"-C", f.KDIR, "M=" + work, "W=1"}, archMakeVars(f.Kernel)...)
		args = append(args, f.Kernel.MakeVars...)
		args = append(args, "modules")
		cmd = proc.Command(ctx, "make", args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		cmdline = "make " + strings.Join(args, " ")
	} else {
		if err := needTool("unshare"); err != nil {
			return "", "", err
		}
		root := filepath.Join(f.root, "root")
		kdir := rootKernelDir + "/usr/src/linux-headers-" + f.Release
		margs := append([]string{"-C", kdir, "M=" + rootSrcDir, "W=1"}, archMakeVars(f.Kernel)...)
		margs = append(margs, f.Kernel.MakeVars...)
		margs = append(margs, "modules")
		cmdline = "chroot " + root + " make " + strings.Join(margs, " ")
		script := `set -e
root=$1; tree=$2; src=$3; shift 3
devbound=
[ -c "$root/dev/null" ] || { mount --rbind /dev "$root/dev"; devbound=1; }
mount -t proc proc "$root/proc" 2>/dev/null || mount --rbind /proc "$root/proc"
mount --bind "$tree" "$root` + rootKernelDir + `"
mount --bind "$src" "$root` + rootSrcDir + `"
status=0
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LC_ALL=C make "$@" || status=$?
# Take the mounts down again: with --propagation unchanged (see
# buildPropagation) a shared parent mount would otherwise keep copies.
umount -R "$root` + rootSrcDir + `" "$root` + rootKernelDir + `" "$root/proc" 2>/dev/null || true
[ -z "$devbound" ] || umount -R "$root/dev" 2>/dev/null || true
exit $status`
		uargs := []string{"-m", "--propagation", buildPropagation()}
		if os.Geteuid() != 0 {
			uargs = append([]string{"-r"}, uargs...)
		}
		uargs = append(uargs, "sh", "-c", script, "sh", root, f.Tree, work)
		uargs = append(uargs, margs...)
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
			return cmdline, out, checkDiskFull(work, fmt.Errorf("%s: %s", cmdline, strings.Join(tailLines(out, 5), "; ")))
		}
		return cmdline, out, &CommandError{Cmd: cmdline, Err: err, Output: tailLines(out, 25)}
	}
	return cmdline, buf.String(), nil
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
		return tailLines(out, 25)
	}
	return lines
}

// warningLines returns the compiler's and modpost's warning lines.
func warningLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ": warning: ") || strings.HasPrefix(l, "WARNING: modpost: ") {
			lines = append(lines, strings.TrimRight(l, " \r"))
		}
	}
	return lines
}
