package kernels

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/kbuild"
)

// rootKey is the cache entry name for r.
func rootKey(r *BuildRoot) string {
	def := struct {
		Suite    string
		Apt      []string
		Packages []string
		Variant  string
	}{r.Suite, r.Apt, r.Packages, kbuild.RootVariant}
	return r.Name + "-" + definitionHash(def)
}

// ensureRoot returns the directory of build root r, creating it with
// mmdebstrap if the cache does not hold a finished one. Concurrent callers
// for the same root wait for the one that creates it.
func (c *Cache) ensureRoot(ctx context.Context, r *BuildRoot) (dir string, cached bool, err error) {
	key := rootKey(r)
	final := filepath.Join(c.Dir, "roots", key)
	unlock, err := cachefs.Lock(ctx, filepath.Join(c.Dir, "locks", "root-"+key+".lock"), c.logf)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	err = kbuild.CheckRoot(final)
	if err == nil {
		return final, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		c.logf("cache: build root %s corrupt (%v), recreating", r.Name, err)
	}
	if err := c.createRoot(ctx, r, final); err != nil {
		return "", false, fmt.Errorf("build root %s: %w", r.Name, err)
	}
	return final, false, nil
}

// createRoot makes build root r in final (see kbuild.MakeRoot), from
// the mirrors chosen for its sources lines.
func (c *Cache) createRoot(ctx context.Context, r *BuildRoot, final string) error {
	st, err := cachefs.Stage(c.Dir, final)
	if err != nil {
		return err
	}
	defer st.Discard()
	mirrors, err := c.chooser().Choose(ctx, "build root "+r.Name, r.Apt)
	if err != nil {
		return err
	}
	sources := strings.Split(strings.TrimSpace(debian.SourcesList(r.Apt, mirrors)), "\n")
	m, err := kbuild.MakeRoot(ctx, st.Dir, kbuild.RootSpec{Name: r.Name, Suite: r.Suite, Packages: r.Packages, Sources: sources}, c.logf)
	if err != nil {
		return err
	}
	return st.Commit(m)
}
