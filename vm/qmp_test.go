package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A fakeQMP serves QEMU's Machine Protocol on a unix socket, as much of
// it as the snapshot code speaks: the greeting, qmp_capabilities, and the
// answers a test scripts for every other command. It stands in for
// QEMU's QMP only; the real QEMU is tested by the VM tests.
type fakeQMP struct {
	path string
	// answer returns the lines to send for one command, or hangUp to
	// close the connection without an answer.
	answer func(cmd string, args json.RawMessage) (lines []string, hangUp bool)
	// greeting is the first line sent; "" hangs up at once.
	greeting string

	mu       sync.Mutex
	commands []string
}

const qmpGreeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}`

// newFakeQMP listens on a socket in a short temporary directory (unix
// socket paths must stay under 108 bytes) and serves every connection.
func newFakeQMP(t *testing.T, answer func(cmd string, args json.RawMessage) ([]string, bool)) *fakeQMP {
	t.Helper()
	return newFakeQMPGreeting(t, qmpGreeting, answer)
}

// newFakeQMPGreeting is newFakeQMP with another greeting ("" hangs up).
func newFakeQMPGreeting(t *testing.T, greeting string, answer func(cmd string, args json.RawMessage) ([]string, bool)) *fakeQMP {
	t.Helper()
	dir, err := shortTempDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeQMP{path: filepath.Join(dir, "qmp.sock"), answer: answer, greeting: greeting}
	f.listen(t)
	return f
}

func (f *fakeQMP) listen(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
}

func (f *fakeQMP) serve(c net.Conn) {
	defer c.Close()
	if f.greeting == "" {
		return
	}
	if _, err := c.Write([]byte(f.greeting + "\n")); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			c.Write([]byte(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\n"))
			continue
		}
		f.mu.Lock()
		f.commands = append(f.commands, req.Execute)
		f.mu.Unlock()
		answer, hangUp := []string{`{"return": {}}`}, false
		if req.Execute != "qmp_capabilities" && f.answer != nil {
			answer, hangUp = f.answer(req.Execute, req.Arguments)
		}
		if hangUp {
			return
		}
		for _, a := range answer {
			if _, err := c.Write([]byte(a + "\n")); err != nil {
				return
			}
		}
	}
}

// got returns the commands received so far.
func (f *fakeQMP) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

// deadline, as a wanted error, is the context's deadline, whether the
// wait between two questions or the connection's deadline met it.
const deadline = "(deadline)"

// checkErr fails t unless err is what want says: nil for "", the
// deadline's error for deadline, else an error containing want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == deadline:
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("want the deadline's error, got %v", err)
		}
	case want != "":
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error %q, got %v", want, err)
		}
	case err != nil:
		t.Errorf("unexpected error: %v", err)
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDialQMP(t *testing.T) {
	f := newFakeQMP(t, nil)
	q, err := dialQMP(testCtx(t, 10*time.Second), f.path)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if diff := cmp.Diff([]string{"qmp_capabilities"}, f.got()); diff != "" {
		t.Errorf("unexpected commands (-want +got):\n%s", diff)
	}
}

// TestDialQMPWaitsForSocket: QEMU creates its socket shortly after it
// starts; the dial retries until it is there.
func TestDialQMPWaitsForSocket(t *testing.T) {
	dir, err := shortTempDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeQMP{path: filepath.Join(dir, "qmp.sock"), greeting: qmpGreeting}
	time.AfterFunc(150*time.Millisecond, func() { f.listen(t) })
	q, err := dialQMP(testCtx(t, 10*time.Second), f.path)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
}

func TestDialQMPErrors(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		_, err := dialQMP(testCtx(t, 200*time.Millisecond), filepath.Join(t.TempDir(), "none.sock"))
		if err == nil || !strings.Contains(err.Error(), "connect to QMP socket") {
			t.Errorf("want a connect error, got %v", err)
		}
	})
	t.Run("hang-up before the greeting", func(t *testing.T) {
		f := newFakeQMPGreeting(t, "", nil)
		_, err := dialQMP(testCtx(t, 10*time.Second), f.path)
		if err == nil || !strings.Contains(err.Error(), "read QMP greeting") {
			t.Errorf("want a greeting error, got %v", err)
		}
	})
	t.Run("capabilities refused", func(t *testing.T) {
		f := newFakeQMPGreeting(t, `{"QMP": {}}`+"\n"+`{"error": {"class": "CommandNotFound", "desc": "no"}}`, nil)
		_, err := dialQMP(testCtx(t, 10*time.Second), f.path)
		if err == nil || !strings.Contains(err.Error(), "QMP qmp_capabilities: CommandNotFound: no") {
			t.Errorf("want the refusal, got %v", err)
		}
	})
}

func TestQMPExecute(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  []string
		hangUp  bool
		want    string
		wantErr string
	}{
		{name: "return", answer: []string{`{"return": {"status": "running"}}`}, want: `{"status": "running"}`},
		{name: "events before the answer are skipped", answer: []string{
			`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}`,
			`{"event": "MIGRATION", "data": {"status": "active"}}`,
			`{"return": {"status": "paused"}}`}, want: `{"status": "paused"}`},
		{name: "error", answer: []string{`{"error": {"class": "GenericError", "desc": "no migration in progress"}}`},
			wantErr: "QMP query-status: GenericError: no migration in progress"},
		{name: "garbage", answer: []string{`not json`}, wantErr: "QMP query-status: decode"},
		{name: "hang-up", hangUp: true, wantErr: "QMP query-status: read answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeQMP(t, func(string, json.RawMessage) ([]string, bool) { return tc.answer, tc.hangUp })
			ctx := testCtx(t, 10*time.Second)
			q, err := dialQMP(ctx, f.path)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			got, err := q.execute(ctx, "query-status", nil)
			switch {
			case tc.wantErr != "" || err != nil:
				checkErr(t, err, tc.wantErr)
			case string(got) != tc.want:
				t.Errorf("answer %s, want %s", got, tc.want)
			}
		})
	}
}

// TestQMPExecuteDeadline: a QEMU that never answers fails the command at
// the context's deadline instead of hanging the run.
func TestQMPExecuteDeadline(t *testing.T) {
	f := newFakeQMP(t, func(string, json.RawMessage) ([]string, bool) { return nil, false })
	ctx := testCtx(t, 300*time.Millisecond)
	q, err := dialQMP(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	start := time.Now()
	if _, err := q.execute(ctx, "query-status", nil); err == nil {
		t.Fatal("want an error from a QEMU that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %s, want the deadline", d)
	}
}

func TestMigrateTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		// statuses are query-migrate's answers in turn; the last repeats.
		statuses []string
		wantErr  string
	}{
		{name: "completed", statuses: []string{
			`{"return": {"status": "setup"}}`,
			`{"return": {"status": "active", "ram": {"transferred": 1000}}}`,
			`{"return": {"status": "completed"}}`}},
		{name: "failed", statuses: []string{`{"return": {"status": "failed", "error-desc": "cat: write error: No space left on device"}}`},
			wantErr: "migration failed: cat: write error: No space left on device"},
		{name: "cancelled", statuses: []string{`{"return": {"status": "cancelled"}}`}, wantErr: "migration cancelled"},
		{name: "never ends", statuses: []string{`{"return": {"status": "active"}}`}, wantErr: deadline},
		{name: "undecodable status", statuses: []string{`{"return": "completed"}`}, wantErr: "decode query-migrate answer"},
		{name: "QEMU gone mid-migration", statuses: nil, wantErr: "QMP query-migrate: read answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var uri string
			n := 0
			f := newFakeQMP(t, func(cmd string, args json.RawMessage) ([]string, bool) {
				mu.Lock()
				defer mu.Unlock()
				switch cmd {
				case "migrate":
					var a struct {
						URI string `json:"uri"`
					}
					_ = json.Unmarshal(args, &a)
					uri = a.URI
					return []string{`{"return": {}}`}, false
				case "query-migrate":
					if len(tc.statuses) == 0 {
						return nil, true
					}
					s := tc.statuses[min(n, len(tc.statuses)-1)]
					n++
					return []string{s}, false
				}
				return []string{`{"error": {"class": "CommandNotFound", "desc": "unexpected"}}`}, false
			})
			ctx := testCtx(t, 500*time.Millisecond)
			q, err := dialQMP(ctx, f.path)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			err = q.migrateTo(ctx, "cat > "+shellQuote("/cache/snap's/state"))
			checkErr(t, err, tc.wantErr)
			mu.Lock()
			defer mu.Unlock()
			if want := `exec:cat > '/cache/snap'\''s/state'`; uri != want {
				t.Errorf("migrate uri %q, want %q", uri, want)
			}
		})
	}
}

// TestGuestRunning: a restored guest is waited for while QEMU loads the
// state, and a guest that ends up anything but running is an error.
func TestGuestRunning(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []string
		wantErr  string
	}{
		{name: "loads, then runs", statuses: []string{"prelaunch", "inmigrate", "inmigrate", "restore-vm", "running"}},
		{name: "load failed", statuses: []string{"inmigrate", "postmigrate"}, wantErr: "restored guest is postmigrate, not running"},
		{name: "guest panicked", statuses: []string{"guest-panicked"}, wantErr: "restored guest is guest-panicked"},
		{name: "never loads", statuses: []string{"inmigrate"}, wantErr: deadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFakeQMP(t, func(cmd string, _ json.RawMessage) ([]string, bool) {
				mu.Lock()
				defer mu.Unlock()
				s := tc.statuses[min(n, len(tc.statuses)-1)]
				n++
				return []string{`{"return": {"status": "` + s + `", "running": false, "singlestep": false}}`}, false
			})
			g := &Guest{qmpPath: f.path}
			err := g.running(testCtx(t, 500*time.Millisecond))
			checkErr(t, err, tc.wantErr)
			for _, c := range f.got()[1:] {
				if c != "query-status" {
					t.Errorf("unexpected command %s", c)
				}
			}
		})
	}
}
