package kernelio

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Debugfs is where the kernel's debug interfaces (kmemleak, failslab,
// gcov) live. Only the debug kernel of the matrix has them.
const Debugfs = "/sys/kernel/debug"

// MountDebugfs mounts Debugfs once; it is a no-op when already mounted
// and fails on kernels without CONFIG_DEBUG_FS.
func MountDebugfs() error {
	if _, err := os.Stat(filepath.Join(Debugfs, "kmemleak")); err == nil {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(Debugfs, &st); err == nil && st.Type == unix.DEBUGFS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(Debugfs, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("Debugfs", Debugfs, "Debugfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount Debugfs: %w", err)
	}
	return nil
}

const kmemleakPath = Debugfs + "/kmemleak"

// kmemleakMinAge is how old an object must be before kmemleak reports it
// (MSECS_MIN_AGE in mm/kmemleak.c), plus a margin.
const kmemleakMinAge = 5500 * time.Millisecond

// KmemleakOn reports whether this kernel has a working kmemleak.
func KmemleakOn() bool {
	if MountDebugfs() != nil {
		return false
	}
	_, err := os.Stat(kmemleakPath)
	return err == nil
}

// KmemleakClear forgets the leaks found so far (boot-time suspects), so
// that a later report holds only what the step left.
func KmemleakClear() error {
	if err := os.WriteFile(kmemleakPath, []byte("clear"), 0); err != nil {
		return fmt.Errorf("kmemleak clear: %w", err)
	}
	return nil
}

// LeakError describes the module's leaks, quoting the first one whole.
func LeakError(leaks []string) error {
	first := strings.Split(leaks[0], "\n")
	if len(first) > 24 {
		first = append(first[:24], "...")
	}
	return fmt.Errorf("kmemleak: %d unreferenced object(s) allocated by the module, the first:\n%s",
		len(leaks), strings.Join(first, "\n"))
}

// GcovDir is where the kernel publishes gcov data (CONFIG_GCOV_KERNEL).
const GcovDir = Debugfs + "/gcov"

// GcovData returns the module's .gcda files by their path under the gcov
// directory (which mirrors the module's build directory on the host).
// They stay readable after rmmod (gcov_persist=1, the default).
func GcovData(module string) (map[string][]byte, error) {
	return gcovFiles(func(base string) bool {
		// Kbuild names objects after sources: module.o, module.mod.o.
		return base == module || strings.HasPrefix(base, module+".")
	})
}

// GcovAll returns every .gcda file of the gcov directory: those of the
// modules built with gcov profiling that were loaded since boot (the
// kernel itself is not profiled).
func GcovAll() (map[string][]byte, error) {
	return gcovFiles(func(string) bool { return true })
}

// gcovFiles returns the .gcda files whose base name (without .gcda)
// keep accepts, by their path under the gcov directory.
func gcovFiles(keep func(base string) bool) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(GcovDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 || d.IsDir() || !strings.HasSuffix(path, ".gcda") {
			return nil
		}
		if !keep(strings.TrimSuffix(filepath.Base(path), ".gcda")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(path, GcovDir)] = bytes.Clone(data)
		return nil
	})
	return files, err
}
