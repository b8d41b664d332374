package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsFreeBound is how long netns-freed waits, times Config.Slowdown, for
// a namespace to be freed after its last process and socket are gone:
// cleanup_net() runs from a workqueue and waits for RCU grace periods,
// which under TCG take far longer than on hardware.
const netnsFreeBound = 10 * time.Second

// homeNamespaces returns the prober's own network and user namespaces.
func homeNamespaces() (netns, userns string, err error) {
	if netns, err = os.Readlink("/proc/self/ns/net"); err != nil {
		return "", "", err
	}
	userns, _ = os.Readlink("/proc/self/ns/user") // absent without CONFIG_USER_NS
	return netns, userns, nil
}

// nobodyCredential drops every privilege: uid and gid nobody, no groups,
// and with them every capability.
func nobodyCredential() *syscall.Credential {
	return &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
}

// stepUnprivilegedNetns: root makes a network namespace for the child and
// the child drops every privilege in it before it greets.
func stepUnprivilegedNetns(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	homeNet, homeUser, err := homeNamespaces()
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("greeting as uid %d in a new network namespace", nobody)
	r, err := p.runChild(ctx, what, &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNET,
		Credential: nobodyCredential(),
	})
	if err != nil {
		return "", err
	}
	switch {
	case r.UID != nobody || r.GID != nobody || r.CapEff != 0:
		return "", fmt.Errorf("%s: the child ran as uid %d gid %d with capabilities %#x, want %d, %d and none", what, r.UID, r.GID, r.CapEff, nobody, nobody)
	case r.Netns == homeNet:
		return "", fmt.Errorf("%s: the child greeted from the initial network namespace %s", what, r.Netns)
	case r.Userns != homeUser:
		return "", fmt.Errorf("%s: the child is in user namespace %s, want the initial one %s", what, r.Userns, homeUser)
	}
	return r.String(), nil
}

// stepUsernsNetns: a child running as nobody creates a user namespace and
// a network namespace of its own (clone(CLONE_NEWUSER|CLONE_NEWNET)) and
// greets from there, as root of its namespace but of nothing else.
func stepUsernsNetns(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	homeNet, homeUser, err := homeNamespaces()
	if err != nil {
		return "", err
	}
	if homeUser == "" {
		return "", skipf("kernel without user namespaces (no /proc/self/ns/user: CONFIG_USER_NS is off)")
	}
	restore, notes, err := applySysctls(usernsNeeds)
	defer restore()
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("uid %d greeting from a user and network namespace it made", nobody)
	r, err := p.runChild(ctx, what, &syscall.SysProcAttr{Credential: nobodyCredential()}, "-userns")
	if err != nil {
		return "", err
	}
	// An unprivileged process may only map its own uid: this map shows
	// that uid nobody made the namespace.
	wantMap := fmt.Sprintf("0,%d,1", nobody)
	switch {
	case r.UID != 0 || r.UIDMap != wantMap:
		return "", fmt.Errorf("%s: the child ran as uid %d with uid map %q, want uid 0 and map %q", what, r.UID, r.UIDMap, wantMap)
	case r.Userns == homeUser || r.Netns == homeNet:
		return "", fmt.Errorf("%s: the child greeted from %s %s, which are the prober's", what, r.Userns, r.Netns)
	}
	return strings.Join(append([]string{r.String()}, notes...), "; "), nil
}

// A sysctlNeed is a setting an unprivileged process needs to create a
// user namespace, where the kernel has it.
type sysctlNeed struct {
	path string
	ok   func(v string) bool
	set  string // the value written when ok is false
	why  string
}

var usernsNeeds = []sysctlNeed{
	{
		// Debian's patch to 5.10 and earlier kernels; 0 refuses
		// CLONE_NEWUSER to processes without CAP_SYS_ADMIN.
		path: "/proc/sys/kernel/unprivileged_userns_clone",
		ok:   func(v string) bool { return v == "1" },
		set:  "1",
		why:  "Debian's switch for unprivileged user namespaces",
	},
	{
		path: "/proc/sys/user/max_user_namespaces",
		ok:   func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n > 0 },
		set:  "1024",
		why:  "0 allows no user namespace",
	},
}

// applySysctls sets what needs say where the kernel has the setting and
// returns a function that restores the old values, and notes saying
// what each was and what was changed.
func applySysctls(needs []sysctlNeed) (restore func(), notes []string, err error) {
	var undo []func()
	restore = func() {
		for _, u := range undo {
			u()
		}
	}
	for _, n := range needs {
		b, rerr := os.ReadFile(n.path)
		if errors.Is(rerr, os.ErrNotExist) {
			continue
		}
		if rerr != nil {
			return restore, notes, rerr
		}
		old := strings.TrimSpace(string(b))
		if n.ok(old) {
			notes = append(notes, fmt.Sprintf("%s is %s", n.path, old))
			continue
		}
		if werr := os.WriteFile(n.path, []byte(n.set+"\n"), 0); werr != nil {
			return restore, notes, fmt.Errorf("set %s to %s (%s): %w", n.path, n.set, n.why, werr)
		}
		path := n.path
		undo = append(undo, func() { _ = os.WriteFile(path, []byte(old+"\n"), 0) })
		notes = append(notes, fmt.Sprintf("%s was %s (%s): set to %s for the step, restored after", n.path, old, n.why, n.set))
	}
	return restore, notes, nil
}

// stepJoinedNetns: a child makes a network namespace and holds it; the
// prober joins it (setns through /proc/PID/ns/net) and greets from it.
func stepJoinedNetns(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	return p.serveJoinedNetns(ctx, nil)
}

// serveJoinedNetns is the joined-netns scenario; track, if set, is given
// the joined namespace's file descriptor before the greeting.
func (p *prober) serveJoinedNetns(ctx context.Context, track func(fd int) error) (string, error) {
	homeNet, _, err := homeNamespaces()
	if err != nil {
		return "", err
	}
	holder, err := p.startHeldChild(ctx, "a child holding a new network namespace",
		&syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}, "-greet=false")
	if err != nil {
		return "", err
	}
	joined := holder.report.Netns
	err = p.joinAndGreet(ctx, holder.report, homeNet, track)
	if rerr := holder.release(); rerr != nil && err == nil {
		err = fmt.Errorf("the child holding %s: %w", joined, rerr)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("joined %s, made and held by process %d, and was served there", joined, holder.report.PID), nil
}

// joinAndGreet joins the network namespace of the holder and greets from it.
func (p *prober) joinAndGreet(ctx context.Context, holder childReport, homeNet string, track func(fd int) error) error {
	if holder.Netns == homeNet {
		return fmt.Errorf("the child meant to hold a new network namespace is in the initial one, %s", homeNet)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", holder.PID)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if track != nil {
		if err := track(fd); err != nil {
			return err
		}
	}
	return onNetnsThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns(%s, CLONE_NEWNET): %w", path, err)
		}
		if here, err := os.Readlink("/proc/thread-self/ns/net"); err != nil || here != holder.Netns {
			return fmt.Errorf("after setns(%s) the thread is in %q (%v), want %s", path, here, err, holder.Netns)
		}
		return nil
	}, func() error {
		return p.greetHere(ctx, fmt.Sprintf("network namespace %s of process %d, joined", holder.Netns, holder.PID))
	})
}

// stepNetnsFreed serves two network namespaces, one the prober makes
// and one another process makes and the prober joins, and requires each
// to be freed once its last process and socket are gone (see nsid_linux.go).
func stepNetnsFreed(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	w, err := dialNsidWatch()
	if err != nil {
		return "", err
	}
	defer w.Close()

	bound := netnsFreeBound * time.Duration(max(p.cfg.Slowdown, 1))
	var freed []string
	var errs []string
	wait := func(n *watchedNetns) {
		n.gone = time.Now()
		if err := w.waitFreed(ctx, n, bound); err != nil {
			errs = append(errs, err.Error())
			return
		}
		freed = append(freed, fmt.Sprintf("%s after %d ms", n, n.freed.Milliseconds()))
	}

	var made *watchedNetns
	err = inNewNetns(func() error {
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the new network namespace: %w", err)
		}
		made, err = w.track(fd, "made by the prober and greeted from")
		unix.Close(fd)
		if err != nil {
			return err
		}
		return p.greetHere(ctx, made.String())
	})
	if err != nil {
		return "", err
	}
	wait(made)

	var joined *watchedNetns
	_, err = p.serveJoinedNetns(ctx, func(fd int) error {
		var err error
		joined, err = w.track(fd, "made by a child process, joined by the prober and greeted from")
		return err
	})
	if err != nil {
		return "", errors.New(strings.Join(append(errs, err.Error()), "; "))
	}
	wait(joined)

	if len(errs) > 0 {
		if len(freed) > 0 {
			errs = append(errs, "freed: "+strings.Join(freed, ", "))
		}
		return "", errors.New(strings.Join(errs, "; "))
	}
	return "freed (RTM_DELNSID): " + strings.Join(freed, "; "), nil
}
