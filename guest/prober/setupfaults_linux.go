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
	if err := f.Set(n); err != nil {
		return nil, false, fmt.Errorf("write %d to %s: %w", n, kernelio.FailNth, err)
	}
	callErr = call()
	left, err := f.Get()
	if err != nil {
		return callErr, false, fmt.Errorf("read %s: %w", kernelio.FailNth, err)
	}
	if left != 0 {
		if err := f.Set(0); err != nil {
			return callErr, false, fmt.Errorf("reset %s: %w", kernelio.FailNth, err)
		}
		return callErr, false, nil
	}
	return callErr, true, nil
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
	points, failed, loaded, err := sweepInsmod(ctx, p.cfg.ModulePath, p.params(),
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
	info := fmt.Sprintf("%d fault points in insmod: %d loads failed cleanly, %d succeeded anyway and served", points, failed, loaded-1)
	if note != "" {
		info += "; " + note
	}
	return info, nil
}

// sweepInsmod loads the module file at path with params under fail-nth
// N = 1, 2, … until a load reaches no fault point (at most
// maxInsmodFaultPoints): the sweep of insmod-faults and of a project's
// init-faults steps. mark runs before each load; failed checks a load
// that failed, loaded one that succeeded (and unloads it). It returns
// the fault points reached and how many loads failed and succeeded,
// the last, uninjected load included.
func sweepInsmod(ctx context.Context, path, params string, mark func(n int),
	failed func(where string, loadErr error) error, loaded func(where string) error) (points, nFailed, nLoaded int, err error) {
	image, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer image.Close()
	err = withFailNth(func(f *kernelio.FailNthFile) error {
		for n := 1; ; n++ {
			if n > maxInsmodFaultPoints {
				return fmt.Errorf("insmod still reaches fault points after %d: the sweep does not end", maxInsmodFaultPoints)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("stopped at fault point %d: %w", n, ctx.Err())
			}
			mark(n)
			loadErr, reached, err := injected(f, n, func() error {
				return unix.FinitModule(int(image.Fd()), params, 0)
			})
			if err != nil {
				return err
			}
			where := fmt.Sprintf("insmod with allocation %d failed", n)
			if !reached {
				where = fmt.Sprintf("insmod without a failure (it reaches %d fault points)", n-1)
				if loadErr != nil {
					return fmt.Errorf("%s: %w", where, loadErr)
				}
			}
			if loadErr != nil {
				nFailed++
				if err := failed(where, loadErr); err != nil {
					return err
				}
			} else {
				nLoaded++
				if err := loaded(where); err != nil {
					return err
				}
			}
			if !reached {
				points = n - 1
				return nil
			}
		}
	})
	return points, nFailed, nLoaded, err
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
