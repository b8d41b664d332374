package cachefs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kmodtest/kmodtest/internal/atomicfile"
)

// ManifestName is the file written last into a finished entry. An entry
// without it was interrupted and is never used.
const ManifestName = "manifest.json"

// LoadManifest decodes dir's manifest into v. A missing entry gives an
// error matching os.ErrNotExist; an entry without a manifest (an
// interrupted write) or with a bad one gives another error.
func LoadManifest(dir string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr == nil {
				return errors.New("no manifest")
			}
		}
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("bad manifest: %v", err)
	}
	return nil
}

// WriteJSON writes v as indented JSON to path, atomically.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// FileSHA256 returns the size and hex sha256 of a file.
func FileSHA256(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// A FileSum records one file of an entry, by its path relative to the
// entry, so that a truncated or altered copy is noticed on use.
type FileSum struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// SumFile records dir/rel.
func SumFile(dir, rel string) (FileSum, error) {
	size, sum, err := FileSHA256(filepath.Join(dir, rel))
	if err != nil {
		return FileSum{}, err
	}
	return FileSum{Path: rel, Size: size, SHA256: sum}, nil
}

// Verify checks that dir/s.Path still has the recorded size and sha256.
// The size is checked first: a truncated file is named as such, cheaply.
func (s FileSum) Verify(dir string) error {
	if s.Path == "" || s.SHA256 == "" {
		return errors.New("incomplete manifest")
	}
	path := filepath.Join(dir, s.Path)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %v", s.Path, errors.Unwrap(err))
	}
	if fi.Size() != s.Size {
		return fmt.Errorf("%s size %d, manifest says %d", s.Path, fi.Size(), s.Size)
	}
	_, sum, err := FileSHA256(path)
	if err != nil {
		return fmt.Errorf("%s: %v", s.Path, err)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("%s sha256 mismatch", s.Path)
	}
	return nil
}

// A Staging directory is where an entry is built. Commit writes the
// entry's manifest, last, and renames the directory into place; a
// deferred Discard removes it when Commit was never reached.
type Staging struct {
	// Dir is the staging directory to fill.
	Dir       string
	root      string
	final     string
	committed bool
}

// Stage creates the staging directory for final, an entry inside root
// (the cache directory), after removing leftovers of interrupted attempts.
// Callers hold final's lock, so any leftover belongs to a process that
// died.
func Stage(root, final string) (*Staging, error) {
	if err := CheckInside(root, final); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	old, _ := filepath.Glob(filepath.Join(parent, ".tmp-"+base+"-*"))
	for _, o := range old {
		if err := RemoveAll(root, o); err != nil {
			return nil, fmt.Errorf("remove interrupted %s: %w", o, err)
		}
	}
	dir, err := os.MkdirTemp(parent, ".tmp-"+base+"-")
	if err != nil {
		return nil, err
	}
	return &Staging{Dir: dir, root: root, final: final}, nil
}

// Commit writes manifest into the staging directory and replaces the
// final entry with it.
func (s *Staging) Commit(manifest any) error {
	if err := WriteJSON(filepath.Join(s.Dir, ManifestName), manifest); err != nil {
		return err
	}
	if _, err := os.Lstat(s.final); err == nil {
		if err := RemoveAll(s.root, s.final); err != nil {
			return fmt.Errorf("remove old %s: %w", s.final, err)
		}
	}
	if err := os.Rename(s.Dir, s.final); err != nil {
		return err
	}
	s.committed = true
	return nil
}

// Discard removes the staging directory unless it was committed.
func (s *Staging) Discard() {
	if !s.committed {
		RemoveAll(s.root, s.Dir)
	}
}
