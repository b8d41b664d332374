package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmodtest/kmodtest/cmd/kmodtest/watch"
	"github.com/kmodtest/kmodtest/harness"
)

var watchCommand = &command{
	Name:  "watch",
	Args:  "[-kernels 6.1,7.2] [-steps core|full] [-src DIR] [-kernel IMAGE -kdir TREE] [-accel kvm|tcg] [-guest-cpu MODEL]",
	Short: "rebuild and rerun the module's steps on every save under kmod/",
	Long: `watch builds the module, runs the steps on the kernels and prints the
verdict table (the verdicts of go test ./vmtests, by the same code), then
waits: every save of a file under the module source rebuilds and reruns.
A build error prints the compiler's lines and waits for the next save.
Ctrl-C stops it and leaves no QEMU or temporary file behind.

Runs do not boot: each kernel boots once, with the prober waiting for its
module, and is saved (QEMU migrate, cached under the cache directory in
snapshots/); every run restores that guest in a new QEMU, so each starts
from a kernel nothing has touched. The module goes to the guest without
its debug sections (the kernel does not load them).

Flags (the environment variables of go test ./vmtests give defaults):

  -kernels 6.1,7.2   kernels of the matrix (default 6.1; "" is every kernel)
  -steps core|full   the steps (default core)
  -src DIR           the module source (default kmod/ of the repository)
  -kernel, -kdir     bring your own kernel: its image and built tree
  -accel kvm|tcg     default: KVM when QEMU can use it
  -guest-cpu MODEL   guest CPU model (Skylake-Client, EPYC-Milan, …; default:
                     qemu64 under TCG, host under KVM)
  -artifacts-dir DIR each target's logs go to DIR/watch/<kernel>/`,
	Run: runWatch,
}

func runWatch(ctx context.Context, env *cliEnv, args []string) error {
	var o harness.Options
	fs := newFlagSet("watch")
	o.Register(fs, watchDefaults)
	src := fs.String("src", "", "")
	rounds := fs.Int("rounds", 0, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (kernels go in -kernels)", fs.Arg(0))
	}
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	repo, err := findRepo()
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(env.stderr, "kmodtest: "+format+"\n", a...) }
	s, err := harness.NewSession(ctx, o, repo, logf)
	if err != nil {
		return err
	}
	if *src != "" {
		if *src, err = filepath.Abs(*src); err != nil {
			return err
		}
	}
	return watch.Run(ctx, watch.Options{Session: s, Src: *src, Out: env.stdout, Rounds: *rounds})
}

// watchDefaults gives the defaults of watch and shell: those of go test's
// environment variables, except that the kernel is 6.1 unless
// KMODTEST_KERNELS (or -kernel) says otherwise.
func watchDefaults(name string) string {
	v := os.Getenv(name)
	if name == "KMODTEST_KERNELS" && v == "" && os.Getenv("KMODTEST_KERNEL") == "" {
		return "6.1"
	}
	return v
}

// findRepo returns the kmodtest checkout that holds the working
// directory: watch and shell build the guest from its sources.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if repo, ok := repoAbove(dir); ok {
		return repo, nil
	}
	// make kmodtest leaves the binary at the top of the checkout, so a
	// project elsewhere can be checked with /path/to/kmodtest/kmodtest.
	if exe, err := os.Executable(); err == nil {
		if repo, ok := repoAbove(filepath.Dir(exe)); ok {
			return repo, nil
		}
	}
	return "", fmt.Errorf("neither %s nor the kmodtest binary's directory is inside a kmodtest checkout: run kmodtest from the repository, or the binary that make kmodtest leaves there (watch, shell and check build the guest from its sources)", dir)
}

// repoAbove returns the kmodtest checkout that holds dir, if any.
func repoAbove(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && len(data) > 0 && string(data[:min(len(data), 36)]) == "module github.com/kmodtest/kmodtest\n" {
			return d, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}
