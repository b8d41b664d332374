package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/guest/kernelio"
	"golang.org/x/sys/unix"
)

// Bounds of the setup sweeps: a load or a namespace creation that still
// reaches a fault point after this many means the sweep does not end.
const (
	maxInsmodFaultPoints = 2000
	maxNetnsFaultPoints  = 4000
)

// withFailNth runs fn on a thread of its own with that thread's fail-nth
// open (fail-nth belongs to a thread). The thread is never unlocked, so
// it ends with the goroutine: whatever fn changed in it (its network
// namespace) goes with it.
func withFailNth(fn func(fn *kernelio.FailNthFile) error) error {
	errc := make(chan error, 1)
	goSafe(errc, func() error {
		runtime.LockOSThread()
		f, err := kernelio.OpenFailNth()
		if err != nil {
			return fmt.Errorf("open %s: %w", kernelio.FailNth, err)
		}
		defer f.Close()
		defer f.Set(0)
		return fn(f)
	})
	return <-errc
}

// injected sets fail-nth to n, runs call and reports whether the n-th
// fault point was reached (and failed) during it.
func injected(f *kernelio.FailNthFile, n int, call func() error) (callErr error, reached bool, err error) {
	callErr, left, err := injectedLeft(f, n, call)
	return callErr, err == nil && left == 0, err
}

// injectedLeft sets fail-nth to n, runs call and returns how many fault
// points were left to reach before the n-th: 0 when it was reached, n
// minus the points call passed when not.
func injectedLeft(f *kernelio.FailNthFile, n int, call func() error) (callErr error, left int, err error) {
	if err := f.Set(n); err != nil {
		return nil, 0, fmt.Errorf("write %d to %s: %w", n, kernelio.FailNth, err)
	}
	callErr = call()
	left, err = f.Get()
	if err != nil {
		return callErr, 0, fmt.Errorf("read %s: %w", kernelio.FailNth, err)
	}
	if left != 0 {
		if err := f.Set(0); err != nil {
			return callErr, 0, fmt.Errorf("reset %s: %w", kernelio.FailNth, err)
		}
	}
	return callErr, left, nil
}

// setupFaultsPrecondition skips where fail-nth is missing and sets
// failslab up; the returned function restores it.
func setupFaultsPrecondition() (restore func(), note string, err error) {
	if _, err := os.Stat(kernelio.FailNth); err != nil {
		return nil, "", skipf("this kernel has no %s (CONFIG_FAULT_INJECTION off): allocation failures cannot be injected", kernelio.FailNth)
	}
	_ = kernelio.MountDebugfs()
	restore, note = kernelio.SetFailslab()
	return restore, note, nil
}

// stepInsmodFaults fails each allocation of the module's load in turn
// (finit_module with fail-nth N, N = 1, 2, … until a load reaches no
// fault point). A load that fails must leave nothing behind: the module
// not in /proc/modules, its protocol not registered. A load that
// succeeds must serve a greeting, and is unloaded again. Leaks are
// kmemleak's scan after the step; kernel reports the host's. The step
// starts and ends with the module unloaded.
func stepInsmodFaults(ctx context.Context, p *prober) (string, error) {
	restore, note, err := setupFaultsPrecondition()
	if err != nil {
		return "", err
	}
	defer restore()
	if p.moduleLoaded() {
		if _, err := p.rmmod(3 * time.Second); err != nil {
			return "", fmt.Errorf("insmod-faults: module still loaded before the sweep: %w", err)
		}
	}
	points, first, failed, loaded, err := sweepInsmod(ctx, p.cfg.ModulePath, p.params(),
		func(n int) {
			p.progress("insmod-faults: fault point %d", n)
			p.leaks.mark(fmt.Sprintf("insmod-faults, fault point %d", n))
		},
		p.leftNothing,
		func(where string) error {
			if err := p.greetHere(ctx, where); err != nil {
				return err
			}
			if _, err := p.rmmod(3 * time.Second); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return nil
		})
	if err != nil {
		return "", fmt.Errorf("insmod-faults: %w", err)
	}
	if points == 0 {
		return "", errors.New("insmod-faults: no fault point was reached: fail-nth injected nothing")
	}
	info := fmt.Sprintf("%d fault points in insmod, %s: %d loads failed cleanly, %d succeeded anyway and served",
		points, sweptRange(first, points), failed, loaded-2)
	if note != "" {
		info += "; " + note
	}
	return info, nil
}

// sweepInsmod loads the module file at path with params under fail-nth
// N: the sweep of insmod-faults and of a project's init-faults steps.
// mark runs before each load; failed checks a load that failed, loaded
// one that succeeded (and unloads it).
//
// It sweeps the fault points from the first one inside do_init_module to
// the last (the one after which a load reaches no fault point, at most
// maxInsmodFaultPoints). The points before do_init_module are the
// loader's own (reading, relocating, sysfs): the module's code has not
// run there, nothing of it can leak or stay registered, and they are
// about nine in ten of a load's points. The first one is found by a
// binary search over the failed allocation's stack, each probe checked
// like a swept point. Where no stack names do_init_module (no symbols),
// every point is swept. It returns the points reached, the first swept
// (0 when every point was), and how many loads failed and succeeded, the uninjected ones included.
func sweepInsmod(ctx context.Context, path, params string, mark func(n int),
	failed func(where string, loadErr error) error, loaded func(where string) error) (points, first, nFailed, nLoaded int, err error) {
	image, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer image.Close()
	err = withFailNth(func(f *kernelio.FailNthFile) error {
		done := map[int]bool{}
		// try loads with allocation n failed and checks the outcome. It
		// reports whether point n was reached, and whether the failed
		// allocation's stack runs through do_init_module (with stacks on).
		try := func(n int, stacks bool) (reached, inInit bool, err error) {
			if ctx.Err() != nil {
				return false, false, fmt.Errorf("stopped at fault point %d: %w", n, ctx.Err())
			}
			mark(n)
			var tail *kernelio.KmsgTail
			if stacks {
				if tail, err = kernelio.OpenKmsgTail(); err != nil {
					return false, false, err
				}
				defer tail.Close()
			}
			loadErr, reached, err := injected(f, n, func() error {
				return unix.FinitModule(int(image.Fd()), params, 0)
			})
			if err != nil {
				return false, false, err
			}
			done[n] = true
			where := fmt.Sprintf("insmod with allocation %d failed", n)
			if !reached {
				where = fmt.Sprintf("insmod without a failure (it reaches %d fault points)", n-1)
				if loadErr != nil {
					return false, false, fmt.Errorf("%s: %w", where, loadErr)
				}
			}
			if loadErr != nil {
				nFailed++
				err = failed(where, loadErr)
			} else {
				nLoaded++
				err = loaded(where)
			}
			if err != nil {
				return reached, false, err
			}
			if tail != nil {
				inInit, err = kernelio.FaultStackHas(tail, "do_init_module")
			}
			return reached, inInit, err
		}

		// A load with no failure counts the points.
		const far = maxInsmodFaultPoints + 1
		loadErr, left, err := injectedLeft(f, far, func() error {
			return unix.FinitModule(int(image.Fd()), params, 0)
		})
		if err != nil {
			return err
		}
		total := far - left
		where := fmt.Sprintf("insmod without a failure (it reaches %d fault points)", total)
		if loadErr != nil {
			return fmt.Errorf("%s: %w", where, loadErr)
		}
		nLoaded++
		if err := loaded(where); err != nil {
			return err
		}
		if total == 0 {
			return nil
		}

		if err := kernelio.SetFailslabVerbose(2); err == nil {
			lo, hi := 1, total+1
			for lo < hi {
				mid := (lo + hi) / 2
				reached, inInit, err := try(mid, true)
				if err != nil {
					kernelio.SetFailslabVerbose(0)
					return err
				}
				if !reached || inInit {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			if err := kernelio.SetFailslabVerbose(0); err != nil {
				return err
			}
			if lo <= total {
				first = lo
			}
		}

		for n := max(first, 1); ; n++ {
			if n > maxInsmodFaultPoints {
				return fmt.Errorf("insmod still reaches fault points after %d: the sweep does not end", maxInsmodFaultPoints)
			}
			if done[n] {
				continue
			}
			reached, _, err := try(n, false)
			if err != nil {
				return err
			}
			if !reached {
				points = n - 1
				return nil
			}
		}
	})
	return points, first, nFailed, nLoaded, err
}

// sweptRange says which of a load's fault points the sweep failed.
func sweptRange(first, points int) string {
	if first == 0 {
		return "all swept (no failed allocation's stack named do_init_module, so the module's init could not be told apart)"
	}
	return fmt.Sprintf("%d-%d swept (from the first in do_init_module; 1-%d are the loader's, before the module's code runs)", first, points, first-1)
}

// leftNothing checks that a failed load left no trace: the module not in
// /proc/modules and no socket of its protocol.
func (p *prober) leftNothing(where string, loadErr error) error {
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mods), "\n") {
		if strings.HasPrefix(line, p.cfg.ModuleName+" ") {
			return fmt.Errorf("%s: the load failed (%v) but /proc/modules still lists the module: %s", where, loadErr, line)
		}
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, p.cfg.Protocol)
	if err == nil {
		unix.Close(fd)
		return fmt.Errorf("%s: the load failed (%v) but socket(AF_NETLINK, SOCK_RAW, %d) succeeds: the protocol is still registered", where, loadErr, p.cfg.Protocol)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		return fmt.Errorf("%s: the load failed (%v); socket(AF_NETLINK, SOCK_RAW, %d): want EPROTONOSUPPORT, got %v", where, loadErr, p.cfg.Protocol, err)
	}
	return nil
}

// stepNetnsFaults fails each allocation of creating a network namespace
// in turn, with the module loaded (unshare(CLONE_NEWNET) with fail-nth N,
// until a creation reaches no fault point): either the creation fails,
// or the new namespace has a socket of the protocol that serves a
// greeting. Each try runs on a thread of its own, which takes its
// namespace with it when it ends.
func stepNetnsFaults(ctx context.Context, p *prober) (string, error) {
	restore, note, err := setupFaultsPrecondition()
	if err != nil {
		return "", err
	}
	defer restore()
	if err := p.requireModule(); err != nil {
		return "", err
	}
	failed, made, points := 0, 0, 0
	for n := 1; ; n++ {
		if n > maxNetnsFaultPoints {
			return "", fmt.Errorf("netns-faults: creating a namespace still reaches fault points after %d: the sweep does not end", maxNetnsFaultPoints)
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("netns-faults: stopped at fault point %d: %w", n, ctx.Err())
		}
		p.progress("netns-faults: fault point %d", n)
		p.leaks.mark(fmt.Sprintf("netns-faults, fault point %d", n))
		var reached bool
		err := withFailNth(func(f *kernelio.FailNthFile) error {
			unshareErr, r, err := injected(f, n, func() error { return unix.Unshare(unix.CLONE_NEWNET) })
			if err != nil {
				return err
			}
			reached = r
			where := fmt.Sprintf("new network namespace with allocation %d failed", n)
			if !reached {
				where = fmt.Sprintf("new network namespace without a failure (it reaches %d fault points)", n-1)
				if unshareErr != nil {
					return fmt.Errorf("%s: unshare: %w", where, unshareErr)
				}
			}
			if unshareErr != nil {
				failed++
				return nil
			}
			made++
			return p.greetHere(ctx, where)
		})
		if err != nil {
			return "", fmt.Errorf("netns-faults: %w", err)
		}
		if !reached {
			points = n - 1
			break
		}
	}
	if points == 0 {
		return "", errors.New("netns-faults: no fault point was reached: fail-nth injected nothing")
	}
	info := fmt.Sprintf("%d fault points in creating a network namespace: %d creations failed, %d succeeded anyway and served", points, failed, made-1)
	if note != "" {
		info += "; " + note
	}
	return info, nil
}
