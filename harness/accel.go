package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/vm"
)

// DetectAccel picks KVM when /dev/kvm opens and QEMU can really run a KVM
// vCPU with it, and TCG otherwise, with the reason. An openable /dev/kvm
// is not enough: under nested virtualisation QEMU may abort on its first
// MSR write ("failed to set MSR 0x10a"). Nor is a QEMU still alive after
// a while: on a loaded host it may not have reached that write yet, and
// a wrong "KVM works" fails every boot of the run. So the check waits for
// QEMU's answers over QMP: machine set up, vCPUs started, still running.
func DetectAccel(ctx context.Context, qemuBin string) (vm.Accel, string) {
	return detectAccel(ctx, "/dev/kvm", qemuBin, 300*time.Millisecond)
}

// detectAccel is DetectAccel with the KVM device given, and how long the
// started vCPUs must keep running.
func detectAccel(ctx context.Context, dev, qemuBin string, settle time.Duration) (vm.Accel, string) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return vm.AccelTCG, "no usable " + dev + " (" + err.Error() + ")"
	}
	f.Close()
	if err := tryKVM(ctx, qemuBin, settle); err != nil {
		return vm.AccelTCG, dev + " is present but QEMU cannot use it: " + err.Error()
	}
	return vm.AccelKVM, dev + " works"
}

// tryKVM starts QEMU with KVM and no guest, stopped, then over QMP on
// its stdio lets the vCPUs run and asks whether they still run after
// settle. It returns why KVM does not work, or nil.
func tryKVM(ctx context.Context, qemuBin string, settle time.Duration) error {
	// Generous: a loaded host may take long to answer, and only a QEMU
	// that hangs without answering waits this long.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := proc.Command(ctx, qemuBin, "-accel", "kvm", "-cpu", "host", "-S", "-nodefaults",
		"-display", "none", "-monitor", "none", "-serial", "none", "-qmp", "stdio")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done, err := proc.Start(cmd)
	if err != nil {
		return err
	}
	var exit error
	exited := false
	defer func() {
		cancel()
		if !exited {
			<-done
		}
	}()
	answers := qmpLines(out)
	// fail says why, with QEMU's first stderr line once it has exited.
	fail := func(what string) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer within 30 s", what)
		}
		exit, exited = <-done, true
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if exit == nil {
			exit = fmt.Errorf("exited at once")
		}
		return fmt.Errorf("%s: %v: %s", what, exit, msg)
	}
	ask := func(what, command string) (string, error) {
		if command != "" {
			if _, err := io.WriteString(in, `{"execute":"`+command+`"}`+"\n"); err != nil {
				return "", fail(what)
			}
		}
		select {
		case l, ok := <-answers:
			if !ok {
				return "", fail(what)
			}
			return l, nil
		case <-ctx.Done():
			return "", fail(what)
		}
	}
	if _, err := ask("setting up the machine", ""); err != nil {
		return err
	}
	if _, err := ask("qmp_capabilities", "qmp_capabilities"); err != nil {
		return err
	}
	if _, err := ask("starting the vCPUs", "cont"); err != nil {
		return err
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	status, err := ask("running the vCPUs", "query-status")
	if err != nil {
		return err
	}
	if !strings.Contains(status, `"running": true`) && !strings.Contains(status, `"running":true`) {
		return fmt.Errorf("the vCPUs do not run: %s", status)
	}
	return nil
}

// qmpLines sends the lines QMP writes to r that are not events: the
// greeting and the answers, in order. It closes the channel at EOF.
func qmpLines(r io.Reader) <-chan string {
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(r)
		for s.Scan() {
			if !strings.Contains(s.Text(), `"event"`) {
				lines <- s.Text()
			}
		}
	}()
	return lines
}
