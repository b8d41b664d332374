package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/kbuild"
)

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

// moduleKey hashes everything a build depends on: the source files (names
// and contents), the patch, the kernel release and package version, the
// toolchain and the make variables.
func moduleKey(f *Fetched, srcDir string, files []string, patch, toolchain string, spec kbuild.Spec) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "kernel %s\nrelease %s\nversion %s\ntoolchain %s\nmake %q\nkdir %s\n",
		f.Kernel.Name, f.Release, f.Version, toolchain, f.Kernel.MakeVars, f.KDIR)
	if !spec.Equal(kmodSpec) {
		// Only a project's build says how: kmod/'s keys stay as they were.
		fmt.Fprintf(h, "spec %q %q %q %v\n", spec.Make, spec.Dir, spec.Modules, spec.W1)
	}
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
func (c *Cache) BuildModule(ctx context.Context, f *Fetched, srcDir string, patch string) (*kbuild.ModuleBuild, error) {
	return c.build(ctx, f, srcDir, patch, kmodSpec)
}

// kmodSpec is how kmod/ is built: make -C KDIR M=DIR W=1 modules.
var kmodSpec = kbuild.Spec{W1: true}

// BuildProject builds the module project in srcDir for f as spec says
// (its make command, where its copy goes, the modules it must make), and
// caches the result as BuildModule does. A build that fails or misses a
// module is a *kbuild.BuildError with the compiler's lines.
func (c *Cache) BuildProject(ctx context.Context, f *Fetched, srcDir string, spec kbuild.Spec) (*kbuild.ModuleBuild, error) {
	return c.build(ctx, f, srcDir, "", spec)
}

func (c *Cache) build(ctx context.Context, f *Fetched, srcDir, patch string, spec kbuild.Spec) (*kbuild.ModuleBuild, error) {
	mb, err := c.buildModule(ctx, f, srcDir, patch, spec)
	if err == nil && !mb.Cached {
		c.prune()
	}
	if err != nil {
		var be *kbuild.BuildError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, fmt.Errorf("build module %s for kernel %s: %w", srcDir, f.Kernel.Name, cachefs.CheckDiskFull(c.Dir, err))
	}
	return mb, nil
}

func (c *Cache) buildModule(ctx context.Context, f *Fetched, srcDir, patch string, spec kbuild.Spec) (*kbuild.ModuleBuild, error) {
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
	files, err := kbuild.SourceFiles(srcDir)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no source files in %s", srcDir)
	}
	toolchain, err := kbuild.ToolchainID(ctx, f.target())
	if err != nil {
		return nil, err
	}
	key, err := moduleKey(f, srcDir, files, patch, toolchain, spec)
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
		return &kbuild.ModuleBuild{
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
	if patch == "" && spec.Equal(kmodSpec) {
		return c.buildInWork(ctx, f, srcDir, files, toolchain, st, final, start)
	}
	work := filepath.Join(tmp, "src")
	copyDir := filepath.Join(work, spec.Dir)
	if err := kbuild.CopyFiles(srcDir, copyDir, files); err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if patch != "" {
		if err := proc.NeedTool("patch"); err != nil {
			return nil, err
		}
		out, err := proc.CombinedOutput(proc.Command(ctx, "patch", "-p1", "--batch", "--forward", "-d", copyDir, "-i", patch))
		if err != nil {
			return nil, debian.CommandFailed("patch -p1 -i "+patch, err, string(out))
		}
	}
	kos, cmdline, out, err := kbuild.MakeSpec(ctx, f.target(), work, spec)
	if err != nil {
		return nil, err
	}
	m := moduleManifest{Kernel: f.Kernel.Name, Release: f.Release, Warnings: kbuild.WarningLines(out), Duration: time.Since(start)}
	for _, ko := range kos {
		name := filepath.Base(ko)
		if slices.Contains(m.Kos, name) {
			return nil, fmt.Errorf("the build made two modules named %s: module names must be unique (the kernel loads one module per name)", name)
		}
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
	if m.Gcov, err = kbuild.KeepGcov(copyDir, tmp, files); err != nil {
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
	return &kbuild.ModuleBuild{
		Ko: filepath.Join(final, m.Kos[0]), Kos: joinAll(final, m.Kos),
		Warnings: m.Warnings, Duration: time.Since(start),
		GcovDir: joinIf(final, m.Gcov),
	}, nil
}

// buildInWork builds the module in srcDir in a build directory the cache
// keeps per kernel and source directory (work/), so that after an edit
// Kbuild recompiles only what changed, or replays its recorded commands
// (kbuild.BuildIn): go test after an edit builds as fast as kmodtest
// watch. The result goes into the staged entry st like any build.
func (c *Cache) buildInWork(ctx context.Context, f *Fetched, srcDir string, files []string, toolchain string, st *cachefs.Staging, final string, start time.Time) (*kbuild.ModuleBuild, error) {
	name := f.Kernel.Name + "-" + definitionHash(struct{ Src, Release, Version, Toolchain string }{srcDir, f.Release, f.Version, toolchain})
	work := filepath.Join(c.Dir, "work", name)
	unlock, err := cachefs.Lock(ctx, filepath.Join(c.Dir, "locks", "work-"+name+".lock"), c.logf)
	if err != nil {
		return nil, err
	}
	defer unlock()
	mb, err := kbuild.BuildIn(ctx, f.target(), srcDir, work)
	if err != nil {
		return nil, err
	}
	m := moduleManifest{Kernel: f.Kernel.Name, Release: f.Release, Warnings: mb.Warnings, Duration: time.Since(start)}
	for _, ko := range mb.Kos {
		name := filepath.Base(ko)
		if err := kbuild.CopyFiles(filepath.Dir(ko), st.Dir, []string{name}); err != nil {
			return nil, fmt.Errorf("keep %s: %w", name, err)
		}
		_, sum, err := cachefs.FileSHA256(filepath.Join(st.Dir, name))
		if err != nil {
			return nil, err
		}
		m.Kos = append(m.Kos, name)
		m.SHA256 = append(m.SHA256, sum)
	}
	if m.Gcov, err = kbuild.KeepGcov(work, st.Dir, files); err != nil {
		return nil, fmt.Errorf("keep gcov notes: %w", err)
	}
	how := "make"
	if mb.Replayed {
		how = "Kbuild's commands replayed"
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "build.log"), []byte(how+"\n"+strings.Join(mb.Warnings, "\n")), 0o644); err != nil {
		return nil, err
	}
	if err := st.Commit(m); err != nil {
		return nil, err
	}
	c.logf("build %s for %s: %s in %.1fs (%s, %d warnings)", filepath.Base(srcDir), f.Kernel.Name, strings.Join(m.Kos, " "), time.Since(start).Seconds(), how, len(m.Warnings))
	return &kbuild.ModuleBuild{
		Ko: filepath.Join(final, m.Kos[0]), Kos: joinAll(final, m.Kos),
		Warnings: m.Warnings, Duration: time.Since(start), Replayed: mb.Replayed,
		GcovDir: joinIf(final, m.Gcov),
	}, nil
}

// joinIf joins dir and name, or gives "" for an empty name.
func joinIf(dir, name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join(dir, name)
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

// BuildModuleIn builds the module in srcDir for f inside work, a build
// directory the caller keeps between builds (see kbuild.BuildIn).
func (c *Cache) BuildModuleIn(ctx context.Context, f *Fetched, srcDir, work string) (*kbuild.ModuleBuild, error) {
	return kbuild.BuildIn(ctx, f.target(), srcDir, work)
}

// target is what kbuild needs to know of f to build modules for it.
func (f *Fetched) target() kbuild.Target {
	return kbuild.Target{Name: f.Kernel.Name, Arch: f.Kernel.Arch, Release: f.Release, KDIR: f.KDIR, Tree: f.Tree, MakeVars: f.Kernel.MakeVars, Root: f.root}
}
