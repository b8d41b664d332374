package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// inNewNetns runs fn on a locked thread in a new network namespace.
// Afterwards the thread goes back to the namespace it came from, so the
// new one loses its last reference once fn closed its sockets even if
// the thread lingers (the runtime wedges the main thread rather than
// end it); it is never unlocked, so the runtime ends it when it can.
func inNewNetns(fn func() error) error {
	return onNetnsThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return skipf("kernel without network namespaces (unshare CLONE_NEWNET: %v)", err)
			}
			return fmt.Errorf("unshare CLONE_NEWNET: %w", err)
		}
		return nil
	}, fn)
}

// onNetnsThread runs enter and then fn on a locked thread, as inNewNetns
// says, and brings the thread back to its network namespace.
func onNetnsThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	goSafe(errc, func() error {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open this thread's network namespace: %w", err)
		}
		defer unix.Close(home)
		if err := enter(); err != nil {
			return err
		}
		ferr := fn()
		if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
			return errors.Join(ferr, fmt.Errorf("return to the initial network namespace: %w", err))
		}
		return ferr
	})
	return <-errc
}

// greetHere dials on the current thread and greets once.
func (p *prober) greetHere(ctx context.Context, where string) error {
	c, err := greet.Dial(p.cfg.Protocol, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer c.Close()
	if _, err := c.Greet(timeoutCtx(ctx, answerTimeout), "Hello from "+where, netlink.Request|netlink.Acknowledge); err != nil {
		if errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("%s: %w (no module socket in this namespace?)", where, err)
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

func stepNetns(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	return "", inNewNetns(func() error { return p.greetHere(ctx, "new network namespace") })
}

func stepNetnsDeleted(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	const rounds = 3
	for i := range rounds {
		err := inNewNetns(func() error { return p.greetHere(ctx, fmt.Sprintf("network namespace %d", i+1)) })
		if err != nil {
			return "", err
		}
	}
	// The namespaces are torn down asynchronously (cleanup_net): keep
	// greeting in the initial namespace for a while, so that a module
	// broken by the teardown shows it here.
	end := time.Now().Add(time.Second)
	n := 0
	for n == 0 || time.Now().Before(end) {
		n++
		if err := p.greetHere(ctx, fmt.Sprintf("initial namespace after deleting %d namespaces (greeting %d)", rounds, n)); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d namespaces created and deleted; %d greetings answered afterwards", rounds, n), nil
}

func stepRmmodBusy(ctx context.Context, p *prober) (string, error) {
	c, err := p.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	err = unix.DeleteModule(p.cfg.ModuleName, unix.O_NONBLOCK)
	switch {
	case err == nil:
		return "", fmt.Errorf("rmmod with a socket open: want EBUSY or EAGAIN, got success (module unloaded under an open socket)")
	case !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN):
		return "", fmt.Errorf("rmmod with a socket open: want EBUSY or EAGAIN, got %v", err)
	}
	if !p.moduleLoaded() {
		return "", fmt.Errorf("rmmod with a socket open failed (%v) but %s is gone", err, p.sysModule())
	}
	if _, gerr := c.Greet(timeoutCtx(ctx, answerTimeout), greetingText, netlink.Request|netlink.Acknowledge); gerr != nil {
		return "", fmt.Errorf("greeting after a refused rmmod: %w", gerr)
	}
	return fmt.Sprintf("rmmod refused with %v", err), nil
}

func stepReload(ctx context.Context, p *prober) (string, error) {
	if p.moduleLoaded() {
		if _, err := p.rmmod(3 * time.Second); err != nil {
			return "", fmt.Errorf("reload: module still loaded before reloading: %w", err)
		}
	}
	const rounds = 3
	for i := 1; i <= rounds; i++ {
		if err := p.insmod(); err != nil {
			return "", fmt.Errorf("reload %d: %w", i, err)
		}
		if err := p.greetHere(ctx, fmt.Sprintf("reload %d", i)); err != nil {
			_, _ = p.rmmod(3 * time.Second)
			return "", fmt.Errorf("reload %d: %w", i, err)
		}
		if _, err := p.rmmod(3 * time.Second); err != nil {
			return "", fmt.Errorf("reload %d: %w", i, err)
		}
	}
	return fmt.Sprintf("%d rounds of insmod, greet, rmmod", rounds), nil
}
