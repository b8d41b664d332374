package vmtests

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
)

// env is the run all VM tests of this process share, set up by TestMain.
var env *harness.Session

func TestMain(m *testing.M) {
	var opts harness.Options
	opts.Register(flag.CommandLine, nil)
	flag.Parse()
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts harness.Options) int {
	// SIGINT and SIGTERM cancel the run: every fetch, build and boot
	// stops and takes its child processes with it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("KMODTEST_SKIP_VM") == "1" {
		fmt.Println("vmtests: KMODTEST_SKIP_VM=1: skipping every VM test")
		return 0
	}
	s, err := harness.NewSession(ctx, opts, "..", logf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtests: %v\n", err)
		return 2
	}
	env = s
	code := m.Run()
	if err := s.Finish(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "vmtests: %v\n", err)
	}
	return code
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vmtests: "+format+"\n", args...)
}
