package kernels

import (
	"bufio"
	"context"
	"embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// configFragments holds the config fragments that source entries of the
// compiled-in matrix name (kernels/*.config).
//
//go:embed *.config
var configFragments embed.FS

// A SourceBuild makes a kernel entry from a Debian kernel source package
// (linux-source-6.12) instead of Debian's binary packages: the harness
// configures it with Config, builds it with the host compiler and uses
// the build tree as KDIR.
type SourceBuild struct {
	// Package is the source package ("linux-source-6.12"), newest version
	// in the entry's apt lines.
	Package string `json:"package"`
	// Config is the config fragment: a file name in kernels/ (for the
	// compiled-in matrix) or relative to $KMODTEST_MATRIX's directory.
	Config string `json:"config"`
}

// fragment returns the content of the config fragment.
func (s *SourceBuild) fragment() ([]byte, error) {
	if m := os.Getenv("KMODTEST_MATRIX"); m != "" {
		path := s.Config
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(m), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config fragment %s (relative to KMODTEST_MATRIX's directory): %w", s.Config, err)
		}
		return data, nil
	}
	data, err := configFragments.ReadFile(s.Config)
	if err != nil {
		return nil, fmt.Errorf("config fragment %q is not a kernels/*.config file: %w", s.Config, err)
	}
	return data, nil
}

// hostCC is the compiler source kernels are built with. Debian builds
// bookworm's kernels with gcc-12, the host's compiler, so the host builds
// both the kernel and its modules and they always match.
const hostCC = "gcc-12"

// sourceKey is the cache entry name of a source kernel: a hash of its apt
// lines, package, fragment and compiler version.
func sourceKey(ctx context.Context, k Kernel) (string, error) {
	frag, err := k.Source.fragment()
	if err != nil {
		return "", err
	}
	if err := needTool(hostCC); err != nil {
		return "", fmt.Errorf("kernel %s is built with %s: %w", k.Name, hostCC, err)
	}
	out, err := proc.Output(proc.Command(ctx, hostCC, "--version"))
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", hostCC, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	def := struct {
		Apt         []string
		Package, CC string
		Fragment    string
	}{k.Apt, k.Source.Package, first, string(frag)}
	return k.Name + "-" + definitionHash(def), nil
}

// SourceCached reports whether k, a source entry, is built and cached, so
// callers can skip it with a hint instead of starting a long build.
func (c *Cache) SourceCached(ctx context.Context, k Kernel) (bool, error) {
	if needTool(hostCC) != nil {
		// Not built here, and the key names the compiler's version: a
		// host without it (Debian 13, which has gcc-14) has nothing
		// cached; building it says what is missing.
		return false, nil
	}
	key, err := sourceKey(ctx, k)
	if err != nil {
		return false, err
	}
	_, err = readKernelManifest(filepath.Join(c.Dir, "kernels", key))
	return err == nil, nil
}

// buildSource downloads k's source package, configures and builds it into
// entry. The caller holds the entry's lock.
func (c *Cache) buildSource(ctx context.Context, k Kernel, entry string) (*kernelManifest, error) {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "tar", "make", "nice", "flex", "bison", "bc"} {
		if err := needTool(tool); err != nil {
			return nil, err
		}
	}
	frag, err := k.Source.fragment()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	apt, err := c.updateLists(ctx, k, entry)
	if err != nil {
		return nil, err
	}
	infos, err := apt.show(ctx, k.Source.Package)
	if err != nil {
		return nil, err
	}
	src := newest(infos)

	st, err := cachefs.Stage(c.Dir, entry)
	if err != nil {
		return nil, err
	}
	defer st.Discard()
	debs := filepath.Join(st.Dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	c.logf("build %s: downloading %s %s (%d MB)…", k.Name, src.Package, src.Version, src.Size>>20)
	if _, err := apt.run(ctx, debs, "apt-get", "-q", "download", src.Package+"="+src.Version); err != nil {
		return nil, err
	}
	pkgTree := filepath.Join(debs, "x")
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != 1 {
		return nil, fmt.Errorf("apt-get download %s gave %d files", src.Package, len(files))
	}
	if out, err := proc.CombinedOutput(proc.Command(ctx, "dpkg-deb", "-x", files[0], pkgTree)); err != nil {
		return nil, commandError("dpkg-deb -x "+filepath.Base(files[0]), err, string(out))
	}
	tarballs, _ := filepath.Glob(filepath.Join(pkgTree, "usr", "src", "linux-source-*.tar.*"))
	if len(tarballs) != 1 {
		return nil, fmt.Errorf("%s holds %d usr/src/linux-source-*.tar.* files, want 1", src.Package, len(tarballs))
	}
	tree := filepath.Join(st.Dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, err
	}
	c.logf("build %s: unpacking %s", k.Name, filepath.Base(tarballs[0]))
	if out, err := proc.CombinedOutput(proc.Command(ctx, "tar", "-xf", tarballs[0], "-C", tree, "--strip-components=1")); err != nil {
		return nil, commandError("tar -xf "+filepath.Base(tarballs[0]), err, string(out))
	}
	if err := cachefs.RemoveAll(c.Dir, debs); err != nil {
		return nil, err
	}

	if err := writeFileAtomic(filepath.Join(tree, "kmodtest.config"), frag); err != nil {
		return nil, err
	}
	mk := func(what string, progress bool, args ...string) error {
		args = append([]string{"-n", "10", "make", "-C", tree, "CC=" + hostCC, "HOSTCC=" + hostCC}, args...)
		return c.runLogged(ctx, k.Name, what, progress, "nice", args...)
	}
	if err := mk("configure", false, "KCONFIG_ALLCONFIG=kmodtest.config", "allnoconfig"); err != nil {
		return nil, err
	}
	cfg, err := os.ReadFile(filepath.Join(tree, ".config"))
	if err != nil {
		return nil, err
	}
	if missing := missingConfig(string(frag), string(cfg)); len(missing) > 0 {
		return nil, fmt.Errorf("config fragment %s: Kconfig did not keep %s (a dependency is off: add it to the fragment)",
			k.Source.Config, strings.Join(missing, ", "))
	}
	jobs := fmt.Sprintf("-j%d", runtime.NumCPU())
	buildStart := time.Now()
	c.logf("build %s: make %s bzImage modules with %s (a cold build takes about 20 minutes on 2 cores)", k.Name, jobs, hostCC)
	if err := mk("compile", true, jobs, "bzImage", "modules"); err != nil {
		return nil, err
	}
	c.logf("build %s: compiled in %s", k.Name, time.Since(buildStart).Round(time.Second))
	if _, err := os.Stat(filepath.Join(tree, "Module.symvers")); err != nil {
		return nil, fmt.Errorf("build %s: no Module.symvers after make modules: %w", k.Name, err)
	}
	rel, err := os.ReadFile(filepath.Join(tree, "include", "config", "kernel.release"))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", k.Name, err)
	}
	m := &kernelManifest{
		Kernel:   k.Name,
		Release:  strings.TrimSpace(string(rel)),
		Version:  src.Version,
		Packages: []string{src.Package},
		Vmlinuz:  filepath.Join("tree", "arch", "x86", "boot", "bzImage"),
		KDIR:     "tree",
		Created:  time.Now().UTC(),
	}
	m.VmlinuzSize, m.VmlinuzSHA256, err = cachefs.FileSHA256(filepath.Join(st.Dir, m.Vmlinuz))
	if err != nil {
		return nil, err
	}
	if err := st.Commit(m); err != nil {
		return nil, err
	}
	c.logf("build %s: done in %s (%s)", k.Name, time.Since(start).Round(time.Second), m.Release)
	return m, nil
}

// missingConfig returns the fragment's settings that cfg does not have:
// "CONFIG_X=v" lines must appear as they are, "# CONFIG_X is not set"
// lines must not be set in cfg.
func missingConfig(fragment, cfg string) []string {
	have := map[string]bool{}
	for _, line := range strings.Split(cfg, "\n") {
		have[strings.TrimSpace(line)] = true
	}
	var missing []string
	for _, line := range strings.Split(fragment, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "CONFIG_"):
			if !have[line] {
				missing = append(missing, line)
			}
		case strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set"):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set")
			for h := range have {
				if strings.HasPrefix(h, name+"=") {
					missing = append(missing, line)
				}
			}
		}
	}
	return missing
}

// runLogged runs a long command, keeping its output in memory for the
// error and, when progress is set, printing a progress line each minute
// (elapsed time and the last file compiled).
func (c *Cache) runLogged(ctx context.Context, name, what string, progress bool, prog string, args ...string) error {
	cmd := proc.Command(ctx, prog, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var mu sync.Mutex
	var tail []string
	last := ""
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			tail = append(tail, line)
			if len(tail) > 200 {
				tail = tail[len(tail)-100:]
			}
			if f := strings.Fields(line); len(f) == 2 && (f[0] == "CC" || f[0] == "LD" || f[0] == "AR") {
				last = f[1]
			}
			mu.Unlock()
		}
		io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	ticker := time.NewTicker(time.Minute)
	defer ticker.Stop()
	// A kernel build runs for many minutes: started through proc, it
	// dies with the run (its process group on cancel, PDEATHSIG if the
	// test binary is killed).
	waitErr, err := proc.Start(cmd)
	if err != nil {
		pw.Close()
		return fmt.Errorf("build %s: %s: %w", name, what, err)
	}
loop:
	for {
		select {
		case err = <-waitErr:
			break loop
		case <-ticker.C:
			if progress {
				mu.Lock()
				c.logf("build %s: %s… %s, at %s", name, what, time.Since(start).Round(time.Second), last)
				mu.Unlock()
			}
		}
	}
	pw.Close()
	<-done
	if err != nil {
		mu.Lock()
		out := strings.Join(tail, "\n")
		mu.Unlock()
		if strings.Contains(out, "No space left on device") {
			return checkDiskFull(c.Dir, fmt.Errorf("build %s: %s: %w", name, what, err))
		}
		return &CommandError{Cmd: prog + " " + strings.Join(args, " "), Err: err, Output: tailLines(out, 25)}
	}
	return nil
}
