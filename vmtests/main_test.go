package vmtests

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/internal/testenv"
)

// env is the run all VM tests of this process share, set up by TestMain.
var env *harness.Session

func TestMain(m *testing.M) {
	var opts harness.Options
	opts.Register(flag.CommandLine, nil)
	flag.Parse()
	if err := checkGoTestCPU(); err != nil {
		fmt.Fprintf(os.Stderr, "vmtests: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts harness.Options) int {
	// SIGINT and SIGTERM cancel the run: every fetch, build and boot
	// stops and takes its child processes with it. A second signal
	// kills the process at once; its children die with it
	// (PR_SET_PDEATHSIG).
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		fmt.Fprintf(os.Stderr, "vmtests: %v: stopping every fetch, build and boot (again to quit at once)\n", sig)
		cancel(fmt.Errorf("interrupted by %v", sig))
	}()
	// go test forwards no SIGTERM: when the go command dies, so does
	// this binary, and with it its children.
	proc.DieWithParent(syscall.SIGTERM)
	if testenv.VMsOff() {
		// A dry run: bad options still fail, as they would in a real one.
		targets, err := opts.Check()
		if err != nil {
			fmt.Fprintf(os.Stderr, "vmtests: %v\n", err)
			return 2
		}
		fmt.Printf("vmtests: KMODTEST_SKIP_VM=1: options %q select %s: skipping every VM test\n", opts.Args(), strings.Join(targets, ", "))
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

// checkGoTestCPU catches go test's own -cpu (a list of GOMAXPROCS values)
// given a guest CPU model: go test takes the flag, and the run would
// fail later with a message about GOMAXPROCS.
func checkGoTestCPU() error {
	f := flag.Lookup("test.cpu")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	for _, v := range strings.Split(f.Value.String(), ",") {
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("-cpu %s: -cpu is go test's own flag (GOMAXPROCS values); the guest's CPU model is -guest-cpu %s (or KMODTEST_CPU=%s)", f.Value, f.Value, f.Value)
		}
	}
	return nil
}
