package kbuild

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/internal/atomicfile"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// A KernelBuild is a kernel built from source (a Debian linux-source
// tree): configured from a fragment on top of allnoconfig and built with
// one compiler, so that the tree is the KDIR of its modules.
type KernelBuild struct {
	// Name is the kernel's name, for messages.
	Name string
	// Tree is the unpacked source tree; the build happens in it.
	Tree string
	// Fragment is the config fragment, FragmentName its file name for
	// messages.
	Fragment     []byte
	FragmentName string
	// CC is the compiler of the kernel and of its modules ("gcc-12").
	CC string
}

// BuildKernel configures and builds b's tree: bzImage and the modules,
// whose Module.symvers out-of-tree modules need. A fragment setting that
// Kconfig drops (a dependency is off) is an error naming it. The build
// runs under nice with one job per CPU and logs progress each minute.
func BuildKernel(ctx context.Context, b KernelBuild, logf func(string, ...any)) error {
	if err := atomicfile.WriteFile(filepath.Join(b.Tree, "kmodtest.config"), b.Fragment, 0o644); err != nil {
		return err
	}
	mk := func(what string, progress bool, args ...string) error {
		args = append([]string{"-n", "10", "make", "-C", b.Tree, "CC=" + b.CC, "HOSTCC=" + b.CC}, args...)
		return runLogged(ctx, logf, b.Name, what, progress, "nice", args...)
	}
	if err := mk("configure", false, "KCONFIG_ALLCONFIG=kmodtest.config", "allnoconfig"); err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(b.Tree, ".config"))
	if err != nil {
		return err
	}
	if missing := missingConfig(string(b.Fragment), string(cfg)); len(missing) > 0 {
		return fmt.Errorf("config fragment %s: Kconfig did not keep %s (a dependency is off: add it to the fragment)",
			b.FragmentName, strings.Join(missing, ", "))
	}
	jobs := fmt.Sprintf("-j%d", runtime.NumCPU())
	buildStart := time.Now()
	logf("build %s: make %s bzImage modules with %s (minutes on 2 cores; docs/performance.md says how many)", b.Name, jobs, b.CC)
	if err := mk("compile", true, jobs, "bzImage", "modules"); err != nil {
		return err
	}
	logf("build %s: compiled in %s", b.Name, time.Since(buildStart).Round(time.Second))
	if _, err := os.Stat(filepath.Join(b.Tree, "Module.symvers")); err != nil {
		return fmt.Errorf("build %s: no Module.symvers after make modules: %w", b.Name, err)
	}
	return nil
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
func runLogged(ctx context.Context, logf func(string, ...any), name, what string, progress bool, prog string, args ...string) error {
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
				logf("build %s: %s… %s, at %s", name, what, time.Since(start).Round(time.Second), last)
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
			// The caller turns this into a cachefs.DiskFullError.
			return fmt.Errorf("build %s: %s: %w: No space left on device", name, what, err)
		}
		return &proc.CommandError{Cmd: prog + " " + strings.Join(args, " "), Err: err, Output: proc.TailLines(out, 25)}
	}
	return nil
}
