package cachefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockPoll is how often a waiting lock is retried; short next to the
// downloads and builds the locks protect.
const lockPoll = 100 * time.Millisecond

// Lock takes an exclusive flock on path, waiting until ctx is done.
// flock locks belong to the open file description, so the lock excludes
// other goroutines of this process (each opens its own) as well as other
// processes. The lock goes away with the process, so a crash never leaves
// a stale lock behind. The returned func releases it. logf, if not nil,
// hears once that the caller is waiting.
func Lock(ctx context.Context, path string, logf func(string, ...any)) (func(), error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited && logf != nil {
			waited = true
			logf("cache: waiting for %s (another fetch or build holds it)", filepath.Base(path))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	return unlocker(f), nil
}

// openLock opens (creating) the lock file path.
func openLock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// unlocker returns the func that releases the lock held on f.
func unlocker(f *os.File) func() {
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}

// TryLock takes the lock on path if nobody holds it. ok is false when
// someone does (or the lock file cannot be opened).
func TryLock(path string) (unlock func(), ok bool) {
	f, err := openLock(path)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return unlocker(f), true
}
