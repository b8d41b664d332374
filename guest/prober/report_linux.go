package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"golang.org/x/sys/unix"
)

// resultPortPath and consolePath are variables so that tests can point
// them at files.
var (
	resultPortPath = contract.ResultPort
	consolePath    = "/dev/console"
)

// A reporter writes event lines to the result port and a short human
// summary to stderr (the console, ttyS0).
type reporter struct {
	mu   sync.Mutex
	port *os.File
}

// openReporter opens the result port, falling back to the console. note
// says what went wrong, if anything.
func openReporter(path string) (*reporter, string) {
	f, err := openPort(path)
	if err == nil {
		return &reporter{port: f}, ""
	}
	note := fmt.Sprintf("open result port %s: %v: writing events to %s instead", path, err, consolePath)
	f, cerr := openPort(consolePath)
	if cerr != nil {
		note += fmt.Sprintf(" (open %s: %v: writing events to stdout)", consolePath, cerr)
		return &reporter{port: os.Stdout}, note
	}
	return &reporter{port: f}, note
}

// openPort opens a serial device for writing and, if it is a tty, puts it
// in raw mode so that the line discipline does not rewrite our bytes.
func openPort(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = makeRaw(fd) // not a tty (a file in tests): nothing to set
	return os.NewFile(uintptr(fd), path), nil
}

// emit writes one event line.
func (r *reporter) emit(e contract.Event) {
	line, err := e.Marshal()
	if err != nil {
		// Cannot happen for these types; say so on the console.
		fmt.Fprintf(os.Stderr, "kmodtest: %v\n", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.port.Write(line); err != nil {
		fmt.Fprintf(os.Stderr, "kmodtest: write event: %v\n", err)
	}
}

// progress writes a line that is no event (no contract.Prefix) to the
// result port: the host, which calls a silent prober hung, sees that a
// long sweep still moves.
func (r *reporter) progress(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.port.Write([]byte("kmodtest: progress: " + line + "\n"))
}

func (r *reporter) begin(step, kernel string, taint uint64) {
	fmt.Fprintln(os.Stderr, contract.ConsoleBegin(step))
	r.emit(contract.Event{Kind: contract.KindBegin, Step: step, Kernel: kernel, TaintBefore: taint, TaintAfter: taint})
}

func (r *reporter) ready() {
	fmt.Fprintf(os.Stderr, "kmodtest: waiting for a job\n")
	r.emit(contract.Event{Kind: contract.KindReady})
}

func (r *reporter) end(e contract.Event) {
	e.Kind = contract.KindEnd
	msg := fmt.Sprintf("kmodtest: step %s: %s (%d ms)", e.Step, e.Status, e.DurationMS)
	if e.Status != contract.StatusPass && e.Detail != "" {
		msg += ": " + e.Detail
	}
	fmt.Fprintln(os.Stderr, msg)
	r.emit(e)
}

func (r *reporter) done(kernel string, taint uint64, d time.Duration) {
	fmt.Fprintf(os.Stderr, "kmodtest: done after %d ms\n", d.Milliseconds())
	r.emit(contract.Event{Kind: contract.KindDone, Kernel: kernel, TaintBefore: taint, TaintAfter: taint, DurationMS: d.Milliseconds()})
}

// Close waits until the port sent everything (tcdrain) and closes it.
func (r *reporter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == os.Stdout {
		return nil
	}
	_ = unix.IoctlSetInt(int(r.port.Fd()), unix.TCSBRK, 1)
	_ = r.port.Sync()
	return r.port.Close()
}

// kernelRelease returns uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return unix.ByteSliceToString(u.Release[:])
}
