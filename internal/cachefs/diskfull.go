package cachefs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A DiskFullError reports ENOSPC in the cache.
type DiskFullError struct {
	Dir  string
	Free uint64 // bytes available to unprivileged users
	Err  error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("no space left in %s (%d MB free): free some space or point KMODTEST_CACHE elsewhere: %v",
		e.Dir, e.Free>>20, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// CheckDiskFull turns an ENOSPC (from Go, or "No space left on device" in
// a command's output) into a *DiskFullError naming dir; other errors pass
// through unchanged.
func CheckDiskFull(dir string, err error) error {
	if err == nil {
		return nil
	}
	var dfe *DiskFullError
	if errors.As(err, &dfe) {
		return err
	}
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "No space left on device") {
		return err
	}
	var st unix.Statfs_t
	var free uint64
	if unix.Statfs(dir, &st) == nil {
		free = st.Bavail * uint64(st.Bsize)
	}
	return &DiskFullError{Dir: dir, Free: free, Err: err}
}
