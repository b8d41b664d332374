package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kmodtest/kmodtest/check"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/project"
)

var checkCommand = &command{
	Name:  "check",
	Args:  "[-kernels 6.1,7.2] [-format text|markdown] [-artifacts DIR] DIR",
	Short: "build a module project on each kernel and check its modules",
	Long: `check reads the module project in DIR (its dkms.conf, its kmodtest.json,
or a plain Kbuild directory: docs/projects.md), builds it against each
kernel with that kernel's own compiler, and checks every module it makes
from its .modinfo: vermagic names the kernel's release, a license is
given (and whether it is GPL-compatible), and the modules it depends on
exist in the kernel. It prints a kernels x modules x steps table and the
reasons for each failure: a module that does not build shows the
compiler's lines. A kernel the project excludes (BUILD_EXCLUSIVE_*) is
skipped. Then it boots a guest of each kernel and loads the modules
(after the kernel's own modules they depend on), with each parameter
set, unloads and reloads them; a kernel report or a new taint fails the
step. With every module loaded, the project's own tests (kmodtest.json's
tests and kunit) run in the guest, a row each. Run it inside a kmodtest
checkout: the guest is built from its prober.

It writes results.json and results.ktap (docs/results.md) into the
artifacts directory, beside each guest's console.log and initramfs.

Flags:

  -kernels LIST     kernels of the matrix (default: every amd64 kernel
                    fetched from Debian: 5.10, 6.1, 6.12, 7.2, 7.3)
  -format FORMAT    text (default) or markdown, a table for a README
  -artifacts DIR    where results.json, results.ktap and the guests' logs
                    go (default: a new kmodtest-check-* directory in the
                    system's temporary directory)

Exit status 1 when a step failed.`,
	Run: runCheck,
}

// errCheckFailed is the exit status of a check that found failures: the
// table already says which.
var errCheckFailed = errors.New("the project failed a step (see the table)")

func runCheck(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("check")
	names := fs.String("kernels", "", "")
	format := fs.String("format", "text", "")
	artifacts := fs.String("artifacts", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give one project directory, got %d arguments", fs.NArg())
	}
	if *format != "text" && *format != "markdown" {
		return usagef("-format %q: want text or markdown", *format)
	}
	var list []string
	if *names != "" {
		list = strings.Split(*names, ",")
	}
	ks, err := check.Kernels(list)
	if err != nil {
		return usagef("%v", err)
	}
	p, err := project.Load(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(env.stderr, format+"\n", args...) }
	// The guest is built from the checkout's prober: outside one, the
	// steps in a guest are left "-" and the rows say why.
	repo, err := findRepo()
	if err != nil {
		logf("check: %v: load, params, unload and reload are not run", err)
		repo = ""
	}
	out := *artifacts
	if out == "" {
		if out, err = os.MkdirTemp("", "kmodtest-check-"); err != nil {
			return fmt.Errorf("artifacts directory: %w", err)
		}
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("artifacts directory: %w", err)
	}
	opts := check.Options{
		Cache:     &kernels.Cache{Dir: dir, Logf: logf},
		Kernels:   ks,
		Logf:      logf,
		Repo:      repo,
		Artifacts: out,
	}
	rep, err := check.Project(ctx, opts, p)
	if err != nil {
		return err
	}
	if err := rep.WriteResults(ctx, opts, out); err != nil {
		return err
	}
	logf("check: results in %s (results.json, results.ktap, each guest's directory)", out)
	if *format == "markdown" {
		fmt.Fprint(env.stdout, rep.Markdown())
	} else {
		fmt.Fprint(env.stdout, rep.String())
	}
	if rep.Failed() {
		return errCheckFailed
	}
	return nil
}
