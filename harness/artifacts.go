package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// Each run writes its artifacts into a directory of its own,
// <root>/runs/<UTC time>-<pid>, so that two runs in one checkout never
// share files and a rerun never overwrites the run it reproduces.
// <root>/latest is a symbolic link to the newest run's directory.
const (
	runsDirName = "runs"
	latestName  = "latest"
	// KeepRuns is how many run directories stay: older ones are removed
	// when a run starts.
	KeepRuns = 10
)

// runName matches the run directories the harness makes, and only them:
// nothing else in <root>/runs is ever removed.
var runName = regexp.MustCompile(`^(\d{8}T\d{6}Z)-(\d+)(\.\d+)?$`)

// NewRunDir makes a new run directory under root, points root/latest at
// it and removes all but the newest KeepRuns run directories (not those
// of runs still going). It returns the new directory.
func NewRunDir(root string, now time.Time, logf func(string, ...any)) (string, error) {
	runs := filepath.Join(root, runsDirName)
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", fmt.Errorf("create artifacts directory: %w", err)
	}
	base := now.UTC().Format("20060102T150405Z") + "-" + strconv.Itoa(os.Getpid())
	name := base
	for i := 2; ; i++ {
		err := os.Mkdir(filepath.Join(runs, name), 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("create run directory: %w", err)
		}
		name = fmt.Sprintf("%s.%d", base, i)
	}
	dir := filepath.Join(runs, name)
	if err := pointLatest(root, filepath.Join(runsDirName, name)); err != nil {
		return "", err
	}
	pruneRuns(runs, name, logf)
	return dir, nil
}

// pointLatest makes root/latest a symbolic link to target, atomically: a
// reader sees the old link or the new one.
func pointLatest(root, target string) error {
	latest := filepath.Join(root, latestName)
	if fi, err := os.Lstat(latest); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s exists and is not a symbolic link: move it away", latest)
	}
	tmp := filepath.Join(root, fmt.Sprintf(".%s-%d-%d", latestName, os.Getpid(), time.Now().UnixNano()))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", latest, err)
	}
	if err := os.Rename(tmp, latest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", latest, err)
	}
	return nil
}

// pruneRuns removes the run directories of runs beyond the newest
// KeepRuns, except current and those whose process still runs.
func pruneRuns(runs, current string, logf func(string, ...any)) {
	entries, err := os.ReadDir(runs)
	if err != nil {
		return
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && runName.MatchString(e.Name()) && e.Name() != current {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // oldest first: the names start with the time
	for _, name := range names[:max(0, len(names)-(KeepRuns-1))] {
		pid, _ := strconv.Atoi(runName.FindStringSubmatch(name)[2])
		if pid != os.Getpid() && processExists(pid) {
			continue
		}
		if err := cachefs.RemoveAll(runs, filepath.Join(runs, name)); err != nil {
			logf("artifacts: cannot remove old run %s: %v", name, err)
		}
	}
}

// processExists reports whether a process with this pid runs.
func processExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}
