// Package initramfs builds the guest's initramfs in two layers: a base
// u-root image (core init plus the prober as uinit), built once and cached
// by the content of the guest sources, and a small per-run archive with the
// module and the prober's configuration. Linux unpacks concatenated cpio
// archives in order, so the two are simply joined; that way a kernel or a
// module change never pays for the Go build of the base image.
package initramfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/atomicfile"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/u-root/uio/llog"
)

// Commands go into the base image. The prober's package path is relative
// to the repository's module.
const (
	initCmd   = "github.com/u-root/u-root/cmds/core/init"
	proberCmd = "github.com/kmodtest/kmodtest/guest/prober"
)

// guestSources are the repository paths whose content decides the base
// image: the prober and everything it imports from this repository.
var guestSources = []string{"guest", "contract", "greet", "ktap", "go.mod", "go.sum"}

// ModuleDir is where the per-run archive puts module files in the guest.
const ModuleDir = "/lib/modules/kmodtest"

// A Builder makes initramfs images for one repository checkout.
type Builder struct {
	// RepoDir is the repository root (where go.mod is).
	RepoDir string
	// CacheDir holds base images, named by content hash.
	CacheDir string
	// Arch is the guest's architecture, whose name is its GOARCH;
	// empty means amd64. Base images are cached per architecture.
	Arch arch.Arch
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// build replaces the u-root build in tests of the caching.
	build func(ctx context.Context, out string) error
	// Extra lists more u-root commands for the image, by import path
	// (kmodtest shell's image adds a shell and the usual tools); they
	// are part of the image's cache key.
	Extra []string
	// Tags are Go build tags for the commands (goshsmall: gosh with a
	// plain line reader, which suits a serial console); part of the key.
	Tags []string
}

// arch returns the GOARCH to build for.
func (b *Builder) arch() string {
	return string(b.Arch.OrDefault())
}

// Base is a built base image.
type Base struct {
	Path     string
	Duration time.Duration
	Cached   bool
}

func (b *Builder) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
}

// Base returns the base image for the current guest sources, building it
// if no image with their hash is cached. The image is an entry of the
// cache like any other (see internal/cachefs): two processes build it
// once, the second waits for the first, and a truncated or altered image
// is found on use and rebuilt.
func (b *Builder) Base(ctx context.Context) (*Base, error) {
	start := time.Now()
	if err := cachefs.Claim(b.CacheDir); err != nil {
		return nil, err
	}
	key, err := b.sourceHash()
	if err != nil {
		return nil, fmt.Errorf("hash guest sources: %w", err)
	}
	name := "base-" + b.arch() + "-" + key[:16]
	dir := filepath.Join(b.CacheDir, "initramfs")
	build := b.build
	if build == nil {
		build = b.buildUroot
	}
	entry := &cachefs.FileEntry{
		Root: b.CacheDir,
		Dir:  filepath.Join(dir, name),
		Name: "base.cpio",
		Lock: filepath.Join(b.CacheDir, "locks", "initramfs-"+name+".lock"),
		Kind: "base initramfs",
		Logf: b.Logf,
		Build: func(ctx context.Context, out string) error {
			// Under the lock: build folders of the old layout were
			// left by a process that died.
			old, _ := filepath.Glob(filepath.Join(dir, ".build-*"))
			for _, o := range old {
				if err := cachefs.RemoveAll(b.CacheDir, o); err != nil {
					return fmt.Errorf("remove interrupted build %s: %w", o, err)
				}
			}
			b.logf("initramfs: building u-root base image for %s (init + prober)…", b.arch())
			if err := build(ctx, out); err != nil {
				return err
			}
			b.logf("initramfs: %s base image built in %.1fs", b.arch(), time.Since(start).Seconds())
			return nil
		},
	}
	path, cached, err := entry.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("base initramfs: %w", err)
	}
	if !cached {
		b.prune(ctx, dir, name)
	}
	return &Base{Path: path, Duration: time.Since(start), Cached: cached}, nil
}

// buildUroot builds the u-root image (core init, the prober as uinit)
// into out, using out's directory for Go's temporary files.
func (b *Builder) buildUroot(ctx context.Context, out string) error {
	tmpDir := filepath.Join(filepath.Dir(out), "build")
	if err := os.Mkdir(tmpDir, 0o755); err != nil {
		return fmt.Errorf("create build dir: %w", err)
	}
	defer cachefs.RemoveAll(b.CacheDir, tmpDir)
	env := golang.Default(
		golang.DisableCGO(),
		golang.WithGOARCH(b.arch()),
		golang.WithGOOS("linux"),
		golang.WithWorkingDir(b.RepoDir),
		golang.WithBuildTag(b.Tags...),
	)
	var log strings.Builder
	l := llog.New(slog.LevelInfo, func(format string, args ...any) {
		fmt.Fprintf(&log, format+"\n", args...)
	})
	err := uimage.Create(l,
		uimage.WithReplaceEnv(env),
		uimage.WithTempDir(tmpDir),
		uimage.WithBusyboxCommands(append([]string{initCmd, proberCmd}, b.Extra...)...),
		uimage.WithInit("init"),
		uimage.WithUinit("prober"),
		uimage.WithCPIOOutput(out),
	)
	if err != nil {
		return fmt.Errorf("build u-root image: %w\n%s", err, log.String())
	}
	return nil
}

// keepBases is how many base images stay cached per architecture: enough
// for a few branches, not one per edit of the prober. An image used in the
// last day stays too: a run that started with it composes from it until
// its last boot.
const (
	keepBases = 3
	recentUse = 24 * time.Hour
)

// prune removes all but the newest keepBases base images of the builder's
// architecture in dir (by last use) and those used in the last day, each
// under its lock; one locked
// elsewhere is skipped.
func (b *Builder) prune(ctx context.Context, dir, current string) {
	entries, _ := filepath.Glob(filepath.Join(dir, "base-*"))
	type aged struct {
		path string
		used time.Time
	}
	var all []aged
	for _, p := range entries {
		// Only this architecture's images compete for the places, and
		// those named before images carried an architecture.
		name := filepath.Base(p)
		if !strings.HasPrefix(name, "base-"+b.arch()+"-") && strings.Count(name, "-") != 1 {
			continue
		}
		if used, err := cachefs.LastUsed(p); err == nil && name != current {
			all = append(all, aged{p, used})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.After(all[j].used) })
	// Images of the old layout (base-KEY.cpio files) are never used again.
	legacy, _ := filepath.Glob(filepath.Join(dir, "base-*.cpio"))
	for _, p := range legacy {
		os.Remove(p)
	}
	for i := keepBases - 1; i < len(all); i++ {
		if time.Since(all[i].used) < recentUse {
			continue
		}
		lock := filepath.Join(b.CacheDir, "locks", "initramfs-"+filepath.Base(all[i].path)+".lock")
		unlock, ok := cachefs.TryLock(lock)
		if !ok {
			continue
		}
		if err := cachefs.RemoveAll(b.CacheDir, all[i].path); err == nil {
			b.logf("initramfs: pruned %s (keeping the newest %d base images)", filepath.Base(all[i].path), keepBases)
		}
		unlock()
	}
}

// sourceHash hashes the guest sources and the Go version that compiles them.
func (b *Builder) sourceHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "go %s\n", runtime.Version())
	for _, cmd := range b.Extra {
		fmt.Fprintf(h, "command %s\n", cmd)
	}
	for _, tag := range b.Tags {
		fmt.Fprintf(h, "tag %s\n", tag)
	}
	for _, rel := range guestSources {
		root := filepath.Join(b.RepoDir, rel)
		var files []string
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return "", err
			}
			name, _ := filepath.Rel(b.RepoDir, f)
			fmt.Fprintf(h, "%s %d\n", name, len(data))
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// File is one file of the per-run archive.
type File struct {
	// Source is a path on the host; when empty, Data is the content.
	Source string
	Data   []byte
	// Target is the absolute path in the guest.
	Target string
	// Mode is the file's permission bits; 0 means 0644.
	Mode os.FileMode
}

// Compose writes out: the base image followed by an archive that holds
// files and the prober's configuration.
func Compose(out, base string, cfg contract.Config, files []File) error {
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode prober config: %w", err)
	}
	records := []cpio.Record{cpio.StaticFile(strings.TrimPrefix(contract.ConfigPath, "/"), string(cfgJSON), 0o644)}
	for _, f := range files {
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return fmt.Errorf("read %s for the initramfs: %w", f.Source, err)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		records = append(records, cpio.StaticFile(strings.TrimPrefix(f.Target, "/"), string(data), uint64(mode.Perm())))
	}

	return atomicfile.Write(out, 0o644, func(w io.Writer) error {
		in, err := os.Open(base)
		if err != nil {
			return fmt.Errorf("open base image: %w", err)
		}
		defer in.Close()
		n, err := io.Copy(w, in)
		if err != nil {
			return fmt.Errorf("copy base image: %w", err)
		}
		// Each archive must start 4-byte aligned.
		if pad := (4 - n%4) % 4; pad != 0 {
			if _, err := w.Write(make([]byte, pad)); err != nil {
				return err
			}
		}
		rw := cpio.Newc.Writer(w)
		if err := cpio.WriteRecordsAndDirs(rw, records); err != nil {
			return fmt.Errorf("write module archive: %w", err)
		}
		return cpio.WriteTrailer(rw)
	})
}
