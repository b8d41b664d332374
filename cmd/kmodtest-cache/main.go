// Command kmodtest-cache manages the kernel cache of kmodtest's VM tests.
//
// Usage:
//
//	go run ./cmd/kmodtest-cache [-kernels 6.1,7.2] fetch|clean|path|list
//
// fetch downloads the selected kernels (and creates their build roots) so
// that tests start warm; clean deletes the whole cache; path prints the
// cache directory; list prints the matrix. The cache directory is
// $KMODTEST_CACHE, else $XDG_CACHE_HOME/kmodtest, else ~/.cache/kmodtest.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kmodtest/kmodtest/kernels"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("kmodtest-cache: ")
	names := flag.String("kernels", "", "comma-separated kernel names (default: the whole matrix)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: kmodtest-cache [-kernels 6.1,7.2] fetch|clean|path|list\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *names); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, command, names string) error {
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return err
	}
	var sel []string
	if names != "" {
		sel = strings.Split(names, ",")
	}
	selected, err := kernels.Select(matrix, sel)
	if err != nil {
		return err
	}
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		return err
	}
	cache := &kernels.Cache{Dir: dir, Logf: log.Printf}
	switch command {
	case "fetch":
		return fetch(ctx, cache, selected)
	case "clean":
		return cache.Clean()
	case "path":
		fmt.Println(dir)
		return nil
	case "list":
		w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSUITE\tTOOLCHAIN\tPROFILES")
		for _, k := range selected {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.Name, k.Suite, k.Toolchain, strings.Join(k.Profiles, ","))
		}
		return w.Flush()
	default:
		return fmt.Errorf("unknown command %q: want fetch, clean, path or list", command)
	}
}

// fetch fetches the kernels in parallel: downloads are network bound and
// build roots of different suites are independent.
func fetch(ctx context.Context, cache *kernels.Cache, selected []kernels.Kernel) error {
	start := time.Now()
	results := make([]*kernels.Fetched, len(selected))
	errs := make([]error, len(selected))
	var wg sync.WaitGroup
	for i, k := range selected {
		wg.Go(func() {
			results[i], errs[i] = cache.Fetch(ctx, k)
		})
	}
	wg.Wait()
	failed := 0
	for i, k := range selected {
		if errs[i] != nil {
			log.Printf("%v", errs[i])
			failed++
			continue
		}
		f := results[i]
		log.Printf("%s: %s cached=%v fetch=%.1fs buildroot=%.1fs vmlinuz=%s KDIR=%s",
			k.Name, f.Release, f.Timings.Cached, f.Timings.Fetch.Seconds(), f.Timings.BuildRoot.Seconds(), f.Vmlinuz, f.KDIR)
	}
	log.Printf("total %.1fs", time.Since(start).Seconds())
	if failed > 0 {
		return fmt.Errorf("%d of %d kernels failed", failed, len(selected))
	}
	return nil
}
