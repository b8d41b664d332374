package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// greetOnceArg makes the prober greet once and exit (the child of the
// unprivileged step).
const greetOnceArg = "-greet-once"

// nobody is the uid and gid the unprivileged step runs as.
const nobody = 65534

// greetOnce greets the module once and returns the exit code: 0 only on
// a correct reply and ack.
func greetOnce(args []string) int {
	fs := flag.NewFlagSet(greetOnceArg, flag.ContinueOnError)
	protocol := fs.Int("protocol", greet.Protocol, "netlink protocol of the module")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := greet.Dial(*protocol, nil)
	if err != nil {
		fmt.Printf("uid %d: %v\n", os.Getuid(), err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if _, err := c.Greet(ctx, "Hello from nobody", netlink.Request|netlink.Acknowledge); err != nil {
		fmt.Printf("uid %d port %d: %v\n", os.Getuid(), c.PID(), err)
		return 1
	}
	fmt.Printf("ok: uid %d gid %d port %d\n", os.Getuid(), os.Getgid(), c.PID())
	return 0
}

func stepUnprivileged(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe", greetOnceArg,
		fmt.Sprintf("-protocol=%d", p.cfg.Protocol), "-timeout=5s")
	// In a u-root busybox the binary dispatches on argv[0].
	cmd.Args[0] = os.Args[0]
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
	}
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("greeting as uid %d: want exit 0 after a correct reply and ack, got %v: %s", nobody, err, text)
	}
	want := fmt.Sprintf("ok: uid %d gid %d", nobody, nobody)
	if !strings.HasPrefix(text, want) {
		return "", fmt.Errorf("greeting as uid %d: want output %q..., got %q", nobody, want, text)
	}
	return text, nil
}

// inNewNetns runs fn on a locked thread in a new network namespace. The
// thread is never unlocked, so it exits with the goroutine and takes the
// namespace's last reference with it once fn closed its sockets.
func inNewNetns(fn func() error) error {
	errc := make(chan error, 1)
	goSafe(errc, func() error {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return skipf("kernel without network namespaces (unshare CLONE_NEWNET: %v)", err)
			}
			return fmt.Errorf("unshare CLONE_NEWNET: %w", err)
		}
		return fn()
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
