package cachefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CheckInside returns an error unless path lies strictly inside root:
// not root itself, not above it, and not reached through a symbolic link
// that leads out of it. Both may be relative (to the working directory).
func CheckInside(root, path string) error {
	if root == "" {
		return fmt.Errorf("refusing to remove %s: no owning directory given", path)
	}
	r, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	p, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := inside(r, p); err != nil {
		return fmt.Errorf("refusing to remove %s: %w", path, err)
	}
	// The last element may be a link (RemoveAll removes the link, not its
	// target); the directories above it must stay inside root.
	rr, err := filepath.EvalSymlinks(r)
	if err != nil {
		return nil // no root, so nothing under it to remove
	}
	pd, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return nil // no parent, so nothing to remove
	}
	if err := inside(rr, filepath.Join(pd, filepath.Base(p))); err != nil {
		return fmt.Errorf("refusing to remove %s: %w (through a symbolic link)", path, err)
	}
	return nil
}

// inside checks lexically that the absolute, clean path p is below r.
func inside(r, p string) error {
	rel, err := filepath.Rel(r, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("it is not strictly inside %s, the directory kmodtest owns", r)
	}
	return nil
}

// RemoveAll removes path and everything below it, but only if path is
// strictly inside root (see CheckInside). Read-only directories (a build
// root has some) are made writable first.
func RemoveAll(root, path string) error {
	if err := CheckInside(root, path); err != nil {
		return err
	}
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(path)
}
