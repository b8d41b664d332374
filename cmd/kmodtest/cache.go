package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kmodtest/kmodtest/kernels"
)

var cacheCommand = &command{
	Name:  "cache",
	Args:  "list|fetch|path|clean|prune [-kernels 6.1,7.2] [-n] [-update]",
	Short: "show, warm, locate, clean and prune the kernel cache",
	Long: `The cache holds the kernels fetched from Debian, the build roots, the
extracted vmlinux files, the built modules and the base initramfs images.
It is $KMODTEST_CACHE (a relative path is taken from the directory you are
in), else $XDG_CACHE_HOME/kmodtest, else ~/.cache/kmodtest, and it carries
a .kmodtest-cache marker file: kmodtest never writes into or cleans a
directory that holds files it did not create.

  list    the matrix (or the -kernels selection), with what is cached for
          each kernel: its release and size on disk
  fetch   download the kernels and create their build roots, in parallel,
          so that tests start warm
  path    print the cache directory
  clean   remove the cache's entries (with -kernels: only those kernels'
          packages, modules and vmlinux, and the build roots no other
          kernel uses); prints each entry and its size first
  prune   remove module builds beyond the 8 most recently used per
          kernel (builds used in the last day stay), entries unused for
          30 days and leftovers of interrupted builds; also done after
          every new module build

Flags:

  -kernels 6.1,7.2   comma-separated kernel names (default: the whole matrix)
  -n                 clean and prune: only print what would be removed
  -update            fetch: move cached kernels to the newest Debian publishes
                     (a warm fetch compares them at most daily and only reports)`,
	Run: runCache,
}

// cacheFlags are the flags of every cache action.
type cacheFlags struct {
	kernels string
	dryRun  bool
	update  bool
}

func runCache(ctx context.Context, env *cliEnv, args []string) error {
	var f cacheFlags
	fs := newFlagSet("cache")
	fs.StringVar(&f.kernels, "kernels", "", "")
	fs.BoolVar(&f.dryRun, "n", false, "")
	fs.BoolVar(&f.update, "update", false, "")
	// Flags may come before or after the action.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no action given: want list, fetch, path, clean or prune")
	}
	action := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q after %q (flags go before or after the action: kmodtest cache %s -kernels 6.1)", fs.Arg(0), action, action)
	}
	switch action {
	case "list", "fetch", "path", "clean", "prune":
	default:
		return usagef("unknown action %q: want list, fetch, path, clean or prune", action)
	}
	if f.dryRun && action != "clean" && action != "prune" {
		return usagef("-n applies to clean and prune, not %s", action)
	}
	if f.update && action != "fetch" {
		return usagef("-update applies to fetch, not %s", action)
	}

	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return err
	}
	if action == "path" {
		fmt.Fprintln(env.stdout, dir)
		return nil
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return err
	}
	var names []string
	if f.kernels != "" {
		names = strings.Split(f.kernels, ",")
	}
	selected, err := kernels.Select(matrix, names)
	if err != nil {
		return usagef("-kernels: %v", err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(env.stderr, "kmodtest: "+format+"\n", args...) }
	cache := &kernels.Cache{Dir: dir, Logf: logf, Update: f.update}
	switch action {
	case "list":
		return cacheList(ctx, env, cache, selected)
	case "fetch":
		return cacheFetch(ctx, env, cache, selected)
	case "clean":
		only := selected
		if f.kernels == "" {
			only = nil
		}
		return cacheClean(ctx, env, cache, matrix, only, f.dryRun)
	default:
		return cachePrune(ctx, env, cache, f.dryRun)
	}
}

func cacheList(ctx context.Context, env *cliEnv, cache *kernels.Cache, selected []kernels.Kernel) error {
	w := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSUITE\tTOOLCHAIN\tPROFILES\tCACHED")
	for _, k := range selected {
		cached := "no"
		if st := cache.Status(ctx, k); st.Release != "" {
			cached = fmt.Sprintf("%s, %s", st.Release, megabytes(st.Size))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Name, k.Suite, k.Toolchain, strings.Join(k.Profiles, ","), cached)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "cache: %s\n", cache.Dir)
	return nil
}

// cacheFetch fetches the kernels in parallel (downloads are network bound
// and build roots of different suites are independent) and extracts their
// boot images, as the tests' Session.Prepare does before building the
// module, so that tests start warm.
func cacheFetch(ctx context.Context, env *cliEnv, cache *kernels.Cache, selected []kernels.Kernel) error {
	start := time.Now()
	results := make([]*kernels.Fetched, len(selected))
	whys := make([]string, len(selected))
	errs := make([]error, len(selected))
	var wg sync.WaitGroup
	for i, k := range selected {
		wg.Go(func() {
			results[i], errs[i] = cache.Fetch(ctx, k)
			if errs[i] == nil {
				_, whys[i], errs[i] = cache.BootImage(ctx, results[i])
			}
		})
	}
	wg.Wait()
	failed := 0
	for i, k := range selected {
		if errs[i] != nil {
			fmt.Fprintf(env.stderr, "kmodtest: %v\n", errs[i])
			failed++
			continue
		}
		f := results[i]
		fmt.Fprintf(env.stdout, "%s: %s cached=%v fetch=%.1fs buildroot=%.1fs boot image: %s\n",
			k.Name, f.Release, f.Timings.Cached, f.Timings.Fetch.Seconds(), f.Timings.BuildRoot.Seconds(), whys[i])
	}
	fmt.Fprintf(env.stdout, "total %.1fs\n", time.Since(start).Seconds())
	if failed > 0 {
		return fmt.Errorf("%d of %d kernels failed", failed, len(selected))
	}
	return nil
}

func cacheClean(ctx context.Context, env *cliEnv, cache *kernels.Cache, matrix, only []kernels.Kernel, dryRun bool) error {
	plan, err := cache.CleanPlan(matrix, only)
	if err != nil {
		return err
	}
	return removePlan(ctx, env, cache, plan, dryRun)
}

func cachePrune(ctx context.Context, env *cliEnv, cache *kernels.Cache, dryRun bool) error {
	plan, err := cache.PrunePlan(time.Now())
	if err != nil {
		return err
	}
	return removePlan(ctx, env, cache, plan, dryRun)
}

// removePlan prints what plan removes, and how much, then removes it
// unless dryRun.
func removePlan(ctx context.Context, env *cliEnv, cache *kernels.Cache, plan []kernels.Removal, dryRun bool) error {
	if len(plan) == 0 {
		fmt.Fprintf(env.stdout, "nothing to remove in %s\n", cache.Dir)
		return nil
	}
	var total int64
	for _, r := range plan {
		fmt.Fprintf(env.stdout, "%10s  %s\n", megabytes(r.Size), r.Path)
		total += r.Size
	}
	if dryRun {
		fmt.Fprintf(env.stdout, "would remove %d entries, %s (-n: nothing removed)\n", len(plan), megabytes(total))
		return nil
	}
	freed, err := cache.Remove(ctx, plan)
	fmt.Fprintf(env.stdout, "removed %s of %s\n", megabytes(freed), megabytes(total))
	return err
}

func megabytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}
