package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// greetOnceArg makes the prober a child sender: it greets the module
// once (or not, with -greet=false), prints a childReport line and exits 0
// only on a correct reply and ack. The steps that need a sender of their
// own (another uid, namespace or process) run it.
const greetOnceArg = "-greet-once"

// nobody is the uid and gid the unprivileged steps run as.
const nobody = 65534

// A childReport is what a child sender says about itself after it
// greeted: who it was and in which namespaces.
type childReport struct {
	UID, GID int
	CapEff   uint64 // effective capabilities (in its own user namespace)
	Netns    string // readlink /proc/self/ns/net, "net:[4026532256]"
	Userns   string // readlink /proc/self/ns/user, "" without user namespaces
	UIDMap   string // the first line of /proc/self/uid_map, fields joined by ","
	PID      int    // in the initial PID namespace (children make no other)
	Port     uint32 // the port it greeted from, 0 when it did not greet
}

// childReportPrefix starts the line a child prints when it succeeded.
const childReportPrefix = "ok:"

func (r childReport) String() string {
	return fmt.Sprintf("%s uid=%d gid=%d capeff=%#x netns=%s userns=%s uidmap=%s pid=%d port=%d",
		childReportPrefix, r.UID, r.GID, r.CapEff, r.Netns, r.Userns, r.UIDMap, r.PID, r.Port)
}

// parseChildReport reads the line childReport.String prints.
func parseChildReport(line string) (childReport, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), childReportPrefix)
	if !ok {
		return childReport{}, fmt.Errorf("child report %q does not start with %q", line, childReportPrefix)
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return childReport{}, fmt.Errorf("child report %q: field %q is not key=value", line, f)
		}
		fields[k] = v
	}
	var r childReport
	var errs []error
	num := func(key string, bits int, set func(uint64)) {
		v, ok := fields[key]
		if !ok {
			errs = append(errs, fmt.Errorf("no %s", key))
			return
		}
		n, err := strconv.ParseUint(v, 0, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		set(n)
	}
	num("uid", 32, func(n uint64) { r.UID = int(n) })
	num("gid", 32, func(n uint64) { r.GID = int(n) })
	num("capeff", 64, func(n uint64) { r.CapEff = n })
	num("pid", 32, func(n uint64) { r.PID = int(n) })
	num("port", 32, func(n uint64) { r.Port = uint32(n) })
	r.Netns, r.Userns, r.UIDMap = fields["netns"], fields["userns"], fields["uidmap"]
	if r.Netns == "" {
		errs = append(errs, errors.New("no netns"))
	}
	if err := errors.Join(errs...); err != nil {
		return childReport{}, fmt.Errorf("child report %q: %w", line, err)
	}
	return r, nil
}

// greetOnce is the child sender's main: it returns the exit code.
func greetOnce(args []string) int {
	fs := flag.NewFlagSet(greetOnceArg, flag.ContinueOnError)
	protocol := fs.Int("protocol", greet.Protocol, "netlink protocol of the module")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answers")
	doGreet := fs.Bool("greet", true, "greet the module (false: only report, e.g. to hold a namespace)")
	hold := fs.Bool("hold", false, "after the report, wait until stdin is closed")
	userns := fs.Bool("userns", false, "first make a user and a network namespace of its own, and greet from there")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *userns {
		return greetInOwnUserns(args)
	}
	var port uint32
	if *doGreet {
		c, err := greet.Dial(*protocol, nil)
		if err != nil {
			fmt.Printf("uid %d: %v\n", os.Getuid(), err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		// Greet checks every answer whole (greet.CheckAnswer).
		_, err = c.Greet(ctx, "Hello from a child sender", netlink.Request|netlink.Acknowledge)
		cancel()
		port = c.PID()
		c.Close()
		if err != nil {
			fmt.Printf("uid %d port %d: %v\n", os.Getuid(), port, err)
			return 1
		}
	}
	r, err := selfReport(port)
	if err != nil {
		fmt.Printf("uid %d: %v\n", os.Getuid(), err)
		return 1
	}
	fmt.Println(r)
	if *hold {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	return 0
}

// greetInOwnUserns runs the child sender again in a user namespace and a
// network namespace that this (unprivileged) process creates, mapping its
// own uid and gid to 0 there: the only mapping an unprivileged process may
// write. The grandchild shares stdin and stdout.
func greetInOwnUserns(args []string) int {
	var rest []string
	for _, a := range args {
		if a != "-userns" && a != "-userns=true" {
			rest = append(rest, a)
		}
	}
	cmd := exec.Command("/proc/self/exe", append([]string{greetOnceArg}, rest...)...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Printf("uid %d: clone(CLONE_NEWUSER|CLONE_NEWNET): %v\n", os.Getuid(), err)
		return 1
	}
	return 0
}

// selfReport describes the calling process.
func selfReport(port uint32) (childReport, error) {
	r := childReport{UID: os.Getuid(), GID: os.Getgid(), PID: os.Getpid(), Port: port}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if r.CapEff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return r, fmt.Errorf("/proc/self/status CapEff: %w", err)
			}
		}
	}
	if r.Netns, err = os.Readlink("/proc/self/ns/net"); err != nil {
		return r, err
	}
	r.Userns, _ = os.Readlink("/proc/self/ns/user") // absent without CONFIG_USER_NS
	if m, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		first, _, _ := strings.Cut(string(m), "\n")
		r.UIDMap = strings.Join(strings.Fields(first), ",")
	}
	return r, nil
}

// childCmd prepares the prober as a child sender with args and attr, its
// environment empty.
func (p *prober) childCmd(ctx context.Context, attr *syscall.SysProcAttr, args ...string) *exec.Cmd {
	all := append([]string{greetOnceArg, fmt.Sprintf("-protocol=%d", p.cfg.Protocol),
		fmt.Sprintf("-timeout=%s", answerTimeout)}, args...)
	cmd := exec.CommandContext(ctx, "/proc/self/exe", all...)
	// In a u-root busybox the binary dispatches on argv[0].
	cmd.Args[0] = os.Args[0]
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = attr
	return cmd
}

// runChild runs a child sender to its end and returns its report; what
// names the sender in errors.
func (p *prober) runChild(ctx context.Context, what string, attr *syscall.SysProcAttr, args ...string) (childReport, error) {
	out, err := p.childCmd(ctx, attr, args...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return childReport{}, fmt.Errorf("%s: want exit 0 after a correct reply and ack, got %v: %s", what, err, text)
	}
	lines := strings.Split(text, "\n")
	r, err := parseChildReport(lines[len(lines)-1])
	if err != nil {
		return childReport{}, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

// A heldChild is a child sender started with -hold: it waits until
// release closes its stdin.
type heldChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	report childReport
}

// startHeldChild starts a child sender with -hold and waits for its report.
func (p *prober) startHeldChild(ctx context.Context, what string, attr *syscall.SysProcAttr, args ...string) (*heldChild, error) {
	cmd := p.childCmd(ctx, attr, append(args, "-hold")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", what, err)
	}
	h := &heldChild{cmd: cmd, stdin: stdin}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), childReportPrefix) {
			h.report, err = parseChildReport(sc.Text())
			if err != nil {
				_ = h.release()
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return h, nil
		}
	}
	err = h.release()
	return nil, fmt.Errorf("%s: ended without a report (%v): %s", what, err, strings.Join(lines, "\n"))
}

// release ends the held child and waits for it.
func (h *heldChild) release() error {
	h.stdin.Close()
	return h.cmd.Wait()
}

func stepUnprivileged(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	r, err := p.runChild(ctx, fmt.Sprintf("greeting as uid %d", nobody), &syscall.SysProcAttr{Credential: nobodyCredential()})
	if err != nil {
		return "", err
	}
	if r.UID != nobody || r.GID != nobody || r.CapEff != 0 {
		return "", fmt.Errorf("greeting as uid %d: the child ran as uid %d gid %d with capabilities %#x, want %d, %d and none", nobody, r.UID, r.GID, r.CapEff, nobody, nobody)
	}
	return r.String(), nil
}
