package cachefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/atomicfile"
)

// MarkerName is the file that marks a directory as a kmodtest cache. It is
// written when kmodtest creates the directory (or finds it empty), and
// cleaning refuses any directory without it.
const MarkerName = ".kmodtest-cache"

// Subdirs are the top-level names kmodtest creates in its cache.
var Subdirs = []string{"kernels", "roots", "modules", "vmlinux", "initramfs", "apt", "locks", "snapshots", "dbg", "work"}

// markerText explains the marker to whoever finds it.
const markerText = "This directory is a kmodtest cache: kmodtest created it and may delete\n" +
	"everything in it (kmodtest cache clean). Do not keep other files here.\n"

// A ForeignDirError is a cache directory that holds files kmodtest did not
// create: kmodtest neither writes into it nor deletes it.
type ForeignDirError struct {
	Dir     string
	Foreign []string
}

func (e *ForeignDirError) Error() string {
	return fmt.Sprintf("cache directory %s holds files kmodtest did not create (%s) and has no %s marker: "+
		"point KMODTEST_CACHE at a directory of its own, e.g. %s",
		e.Dir, strings.Join(e.Foreign, ", "), MarkerName, filepath.Join(e.Dir, "kmodtest"))
}

// Claim makes dir a kmodtest cache: it creates dir and writes the marker
// when dir does not exist or is empty, and adopts a cache from before the
// marker existed (one holding only Subdirs). A directory holding anything
// else gives a *ForeignDirError. Claiming a marked directory costs one stat.
func Claim(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, MarkerName)); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache directory: %w", err)
	}
	var foreign []string
	for _, e := range entries {
		// The marker, or its temporary file, may appear between the
		// Stat above and ReadDir: another process claimed dir meanwhile.
		if isMarker(e.Name()) || slices.Contains(Subdirs, e.Name()) {
			continue
		}
		foreign = append(foreign, e.Name())
	}
	if len(foreign) > 0 {
		if len(foreign) > 3 {
			foreign = append(foreign[:3], "…")
		}
		return &ForeignDirError{Dir: dir, Foreign: foreign}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cache directory: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, MarkerName), []byte(markerText), 0o644); err != nil {
		return fmt.Errorf("mark cache directory: %w", err)
	}
	return nil
}

// isMarker reports whether name is the marker or atomicfile's temporary
// name for it.
func isMarker(name string) bool {
	return name == MarkerName || strings.HasPrefix(name, "."+MarkerName+".tmp-")
}

// CheckOwned is Claim for commands that remove things: a directory that
// does not exist gives exists false and no error; a directory kmodtest did
// not create gives a *ForeignDirError and nothing may be removed in it.
func CheckOwned(dir string) (exists bool, err error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err := Claim(dir); err != nil {
		return true, fmt.Errorf("%w; nothing was removed", err)
	}
	return true, nil
}
