package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// debugfs is where the kernel's debug interfaces (kmemleak, failslab,
// gcov) live. Only the debug kernel of the matrix has them.
const debugfs = "/sys/kernel/debug"

// mountDebugfs mounts debugfs once; it is a no-op when already mounted
// and fails on kernels without CONFIG_DEBUG_FS.
func mountDebugfs() error {
	if _, err := os.Stat(filepath.Join(debugfs, "kmemleak")); err == nil {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(debugfs, &st); err == nil && st.Type == unix.DEBUGFS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(debugfs, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("debugfs", debugfs, "debugfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount debugfs: %w", err)
	}
	return nil
}

const kmemleakPath = debugfs + "/kmemleak"

// kmemleakMinAge is how old an object must be before kmemleak reports it
// (MSECS_MIN_AGE in mm/kmemleak.c), plus a margin.
const kmemleakMinAge = 5500 * time.Millisecond

// kmemleakOn reports whether this kernel has a working kmemleak.
func kmemleakOn() bool {
	if mountDebugfs() != nil {
		return false
	}
	_, err := os.Stat(kmemleakPath)
	return err == nil
}

// kmemleakClear forgets the leaks found so far (boot-time suspects), so
// that a later report holds only what the step left.
func kmemleakClear() error {
	if err := os.WriteFile(kmemleakPath, []byte("clear"), 0); err != nil {
		return fmt.Errorf("kmemleak clear: %w", err)
	}
	return nil
}

// kmemleakCheck waits until the step's objects are old enough to be
// reported, scans twice (a pointer left in a register or on a stack can
// hide a leak from one scan) and returns the suspected leaks whose
// backtrace runs through module, or through code no longer loaded
// (an unloaded instance of the module: the only module the guest loads).
func kmemleakCheck(ctx context.Context, module string) ([]string, error) {
	if err := sleepCtx(ctx, kmemleakMinAge); err != nil {
		return nil, err
	}
	for range 2 {
		if err := os.WriteFile(kmemleakPath, []byte("scan"), 0); err != nil {
			return nil, fmt.Errorf("kmemleak scan: %w", err)
		}
	}
	data, err := os.ReadFile(kmemleakPath)
	if err != nil {
		return nil, fmt.Errorf("read kmemleak report: %w", err)
	}
	return moduleLeaks(string(data), module), nil
}

// unloadedCode matches a backtrace frame kmemleak could not symbolize in
// the module area: code of a module that has been unloaded since.
var unloadedCode = regexp.MustCompile(`\] 0xffffffff[a-f][0-9a-f]{7}\s*$`)

// moduleLeaks splits a kmemleak report into its objects and returns
// those that the module allocated.
func moduleLeaks(report, module string) []string {
	var out []string
	for _, obj := range strings.Split(report, "unreferenced object ")[1:] {
		obj = "unreferenced object " + strings.TrimRight(obj, "\n")
		mine := strings.Contains(obj, "["+module+"]")
		for _, line := range strings.Split(obj, "\n") {
			if unloadedCode.MatchString(line) {
				mine = true
			}
		}
		if mine {
			out = append(out, obj)
		}
	}
	return out
}

// leakError describes the module's leaks, quoting the first one whole.
func leakError(leaks []string) error {
	first := strings.Split(leaks[0], "\n")
	if len(first) > 24 {
		first = append(first[:24], "...")
	}
	return fmt.Errorf("kmemleak: %d unreferenced object(s) allocated by the module, the first:\n%s",
		len(leaks), strings.Join(first, "\n"))
}

const gcovDir = debugfs + "/gcov"

// gcovData returns the module's .gcda files by their path under the gcov
// directory (which mirrors the module's build directory on the host).
// They stay readable after rmmod (gcov_persist=1, the default).
func gcovData(module string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(gcovDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || d.IsDir() || !strings.HasSuffix(path, ".gcda") {
			return nil
		}
		// Kbuild names objects after sources: module.o, module.mod.o.
		base := strings.TrimSuffix(filepath.Base(path), ".gcda")
		if base != module && !strings.HasPrefix(base, module+".") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(path, gcovDir)] = bytes.Clone(data)
		return nil
	})
	return files, err
}

// gcovCost is what the per-step snapshots cost so far: how many were
// sent, their bytes and the time spent reading them.
type gcovCost struct {
	snapshots, bytes int
	time             time.Duration
}

func (c gcovCost) String() string {
	return fmt.Sprintf("%d step snapshots before this one, %d bytes, read in %d ms", c.snapshots, c.bytes, c.time.Milliseconds())
}

// gcovSnapshot returns the module's gcov data as it stands, to send
// with the end of a step (Config.GcovSnapshots): the counts are
// cumulative, so the host subtracts the previous step's. It returns nil
// while the module has no data (never loaded yet).
func (p *prober) gcovSnapshot() (map[string][]byte, error) {
	start := time.Now()
	if err := mountDebugfs(); err != nil {
		return nil, fmt.Errorf("gcov snapshot: %w", err)
	}
	files, err := gcovData(p.cfg.ModuleName)
	if err != nil {
		return nil, fmt.Errorf("gcov snapshot: %w", err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	p.gcov.snapshots++
	for _, d := range files {
		p.gcov.bytes += len(d)
	}
	p.gcov.time += time.Since(start)
	return files, nil
}

func stepCoverage(ctx context.Context, p *prober) (string, error) {
	if err := mountDebugfs(); err != nil {
		return "", skipf("no debugfs on this kernel: %v", err)
	}
	if _, err := os.Stat(gcovDir); err != nil {
		return "", skipf("this kernel has no %s (CONFIG_GCOV_KERNEL off): no line coverage", gcovDir)
	}
	files, err := gcovData(p.cfg.ModuleName)
	if err != nil {
		return "", fmt.Errorf("read gcov data: %w", err)
	}
	if len(files) == 0 {
		return "", skipf("no .gcda of %s under %s: the module was not built with GCOV_PROFILE", p.cfg.ModuleName, gcovDir)
	}
	p.files = files
	size := 0
	for _, d := range files {
		size += len(d)
	}
	info := fmt.Sprintf("%d gcov file(s), %d bytes", len(files), size)
	if p.cfg.GcovSnapshots {
		info += "; " + p.gcov.String()
	}
	return info, nil
}
