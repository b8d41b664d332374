package shell

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/internal/testenv"
)

// terminal is the user's side of a pseudo-terminal: what the guest
// printed, and a way to type.
type terminal struct {
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
}

func (t *terminal) read() {
	buf := make([]byte, 4096)
	for {
		n, err := t.master.Read(buf)
		t.mu.Lock()
		t.out.Write(buf[:n])
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (t *terminal) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.String()
}

// waitFor waits until the output after offset from holds want and
// returns the offset after it.
func (t *terminal) waitFor(tb testing.TB, from int, want string, timeout time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s := t.text()
		if i := strings.Index(s[min(from, len(s)):], want); i >= 0 {
			return from + i + len(want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("no %q on the terminal within %s; it shows:\n%s", want, timeout, t.text()[min(from, len(t.text())):])
	return 0
}

func (t *terminal) typeLine(tb testing.TB, line string) {
	tb.Helper()
	if _, err := t.master.Write([]byte(line + "\r")); err != nil {
		tb.Fatalf("type %q: %v", line, err)
	}
}

// exit leaves the shell and waits for kmodtest shell to end.
func (t *terminal) exit(tb testing.TB, at int, done <-chan error) {
	tb.Helper()
	t.typeLine(tb, "exit")
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("shell: %v", err)
		}
	case <-time.After(time.Minute):
		tb.Fatalf("the guest did not power off after exit; terminal:\n%s", t.text()[at:])
	}
}

// startShell runs kmodtest shell for 6.1 on a pseudo-terminal.
func startShell(t *testing.T, gdb bool, onGDB func(string)) (*terminal, <-chan error) {
	testenv.NeedVMs(t)
	s, err := harness.NewSession(t.Context(), harness.Options{Kernels: "6.1", ArtifactsDir: t.TempDir()}, testenv.RepoRoot(t), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	term := &terminal{master: master}
	go term.read()
	done := make(chan error, 1)
	go func() {
		// KMODTEST_SHELL_DBG=1 also gives gdb the kernel's symbols from
		// Debian's -dbg package (an 818 MB download, once).
		dbg := gdb && os.Getenv("KMODTEST_SHELL_DBG") == "1"
		done <- Run(t.Context(), Options{Session: s, TTY: tty, Out: tty, GDB: gdb, Dbg: dbg, OnGDB: onGDB})
	}()
	return term, done
}

// TestShell runs a command in the guest's shell through a pseudo-terminal,
// reads its output, and leaves.
func TestShell(t *testing.T) {
	term, done := startShell(t, false, nil)
	at := term.waitFor(t, 0, "NetlinkGreetingsLKM loaded", 5*time.Minute)
	at = term.waitFor(t, at, "$ ", time.Minute)
	term.typeLine(t, "greet hello from a terminal")
	at = term.waitFor(t, at, "has been processed by kernel", time.Minute)
	at = term.waitFor(t, at, "$ ", time.Minute)
	term.typeLine(t, "probe reply")
	at = term.waitFor(t, at, "step reply: pass", time.Minute)
	at = term.waitFor(t, at, "$ ", time.Minute)
	term.exit(t, at, done)
	term.waitFor(t, at, "reboot: Power down", 5*time.Second)
}

// TestShellGDB breaks in the module's message handler from gdb, sends a
// greeting from the guest's shell, and reads the greeting's text in gdb.
func TestShellGDB(t *testing.T) {
	testenv.NeedVMs(t)
	testenv.NeedTool(t, "gdb")
	gdbFile := make(chan string, 1)
	term, done := startShell(t, true, func(f string) { gdbFile <- f })
	var file string
	select {
	case file = <-gdbFile:
	case err := <-done:
		t.Fatalf("shell ended before gdb could attach: %v\n%s", err, term.text())
	case <-time.After(5 * time.Minute):
		t.Fatalf("no gdb command file; terminal:\n%s", term.text())
	}
	at := term.waitFor(t, 0, "$ ", time.Minute)

	// gdb touches ready once its breakpoints are in, while the guest is
	// stopped: a greeting typed from then on waits in the serial port
	// until continue, and cannot slip past the breakpoints.
	ready := filepath.Join(t.TempDir(), "ready")
	gdb := exec.CommandContext(t.Context(), "gdb", "-batch", "-nx", "-x", file,
		"-ex", "break greet_rcv", "-ex", "break greet_msg", "-ex", "shell touch "+ready, "-ex", "continue",
		"-ex", "print (char *)skb->data + 16", "-ex", "continue",
		"-ex", "print text", "-ex", "bt 8", "-ex", "detach")
	var gdbOut bytes.Buffer
	gdb.Stdout, gdb.Stderr = &gdbOut, &gdbOut
	if err := gdb.Start(); err != nil {
		t.Fatal(err)
	}
	gdbDone := make(chan error, 1)
	go func() { gdbDone <- gdb.Wait() }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			gdb.Process.Kill()
			t.Fatalf("gdb did not set its breakpoints within 2 minutes:\n%s", gdbOut.String())
		}
	}
	term.typeLine(t, "greet hello gdb")
	select {
	case err := <-gdbDone:
		if err != nil {
			t.Errorf("gdb: %v", err)
		}
	case <-time.After(2 * time.Minute):
		gdb.Process.Kill()
		t.Fatalf("gdb did not stop in greet_msg:\n%s", gdbOut.String())
	}
	t.Logf("gdb:\n%s", gdbOut.String())
	// The text read from the skb in the receive function, then in the
	// per-message handler.
	if strings.Count(gdbOut.String(), `"hello gdb"`) != 2 || !strings.Contains(gdbOut.String(), "Breakpoint 1, greet_rcv") {
		t.Errorf("gdb did not stop in greet_rcv and greet_msg and show the greeting text twice:\n%s", gdbOut.String())
	}
	if out := os.Getenv("KMODTEST_GDB_TRANSCRIPT"); out != "" {
		// The transcript leaves out the test's own "-ex 'shell touch …'".
		var args []string
		for i := 1; i < len(gdb.Args); i++ {
			if i+1 < len(gdb.Args) && strings.HasPrefix(gdb.Args[i+1], "shell touch") {
				i++
				continue
			}
			args = append(args, gdb.Args[i])
		}
		transcript := fmt.Sprintf("$ cat gdb.cmd\n%s\n$ gdb %s\n%s", readFile(file), strings.Join(quote(args), " "), gdbOut.String())
		if err := os.WriteFile(out, []byte(transcript), 0o644); err != nil {
			t.Error(err)
		}
	}
	at = term.waitFor(t, at, "has been processed by kernel", time.Minute)
	term.exit(t, at, done)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func quote(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " *()") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}
