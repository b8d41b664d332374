package cachefs

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestCheckDiskFull(t *testing.T) {
	err := CheckDiskFull(t.TempDir(), &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	var dfe *DiskFullError
	if !errors.As(err, &dfe) || !strings.Contains(err.Error(), "MB free") {
		t.Fatalf("want *DiskFullError, got %v", err)
	}
	if err := CheckDiskFull("/", os.ErrClosed); err != os.ErrClosed {
		t.Fatalf("other errors must pass through, got %v", err)
	}
}
