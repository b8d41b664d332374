package cachefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FileManifest is the manifest of an entry made by a FileEntry.
type FileManifest struct {
	// Owner says whom the entry belongs to (the kernel a vmlinux was
	// extracted from), so that cleaning one kernel finds it.
	Owner   string    `json:"owner,omitempty"`
	Files   []FileSum `json:"files"`
	Created time.Time `json:"created"`
}

// A FileEntry is a cache entry that holds one file, made by Build when the
// entry is missing or fails verification.
type FileEntry struct {
	// Root is the cache directory; Dir, the entry, lies inside it.
	Root, Dir string
	// Name is the file's name inside Dir; Also names other files Build
	// writes beside it, recorded and verified with it.
	Name string
	Also []string
	// Lock is the entry's lock file.
	Lock string
	// Owner goes into the manifest.
	Owner string
	// Kind names the entry in log lines ("vmlinux of 6.1").
	Kind string
	Logf func(format string, args ...any)
	// Build writes the file to path (in a staging directory).
	Build func(ctx context.Context, path string) error
}

// Get returns the verified file, building it if needed. cached is true
// when it was already there. Concurrent callers (goroutines or processes)
// build it once; the others wait for it.
func (e *FileEntry) Get(ctx context.Context) (path string, cached bool, err error) {
	path = filepath.Join(e.Dir, e.Name)
	if e.verify() == nil {
		return path, true, nil
	}
	unlock, err := Lock(ctx, e.Lock, e.Logf)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	err = e.verify()
	if err == nil {
		return path, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) && e.Logf != nil {
		e.Logf("cache: %s corrupt (%v), rebuilding", e.Kind, err)
	}
	st, err := Stage(e.Root, e.Dir)
	if err != nil {
		return "", false, err
	}
	defer st.Discard()
	if err := e.Build(ctx, filepath.Join(st.Dir, e.Name)); err != nil {
		return "", false, err
	}
	m := FileManifest{Owner: e.Owner, Created: time.Now().UTC()}
	for _, name := range append([]string{e.Name}, e.Also...) {
		sum, err := SumFile(st.Dir, name)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", e.Kind, err)
		}
		m.Files = append(m.Files, sum)
	}
	if err := st.Commit(m); err != nil {
		return "", false, fmt.Errorf("store %s: %w", e.Kind, err)
	}
	return path, false, nil
}

// verify checks the entry's manifest and files, and records the use.
func (e *FileEntry) verify() error {
	var m FileManifest
	if err := LoadManifest(e.Dir, &m); err != nil {
		return err
	}
	if len(m.Files) == 0 {
		return errors.New("incomplete manifest")
	}
	for _, f := range m.Files {
		if err := f.Verify(e.Dir); err != nil {
			return err
		}
	}
	MarkUsed(e.Dir)
	return nil
}

// MarkUsed records that the entry dir was just used, for pruning: the
// manifest's modification time is the entry's last use.
func MarkUsed(dir string) {
	now := time.Now()
	os.Chtimes(filepath.Join(dir, ManifestName), now, now)
}

// LastUsed returns when the entry dir was last used (or finished).
func LastUsed(dir string) (time.Time, error) {
	fi, err := os.Stat(filepath.Join(dir, ManifestName))
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
