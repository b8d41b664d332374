package vmtests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processesWith returns the pids of processes whose command line holds
// every one of words.
func processesWith(words ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := string(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		all := true
		for _, w := range words {
			all = all && strings.Contains(cmdline, w)
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

// outermost returns the pids of pids whose parent is not among them.
func outermost(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if !slices.Contains(pids, parentOf(pid)) {
			out = append(out, pid)
		}
	}
	return out
}

// parentOf returns pid's parent from /proc, or 0.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: fields start
	// after the last ')'. PPid is the second of them.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestNoOrphans starts `go test ./vmtests` on a fixture whose guest
// hangs, waits until its QEMU runs, ends the run the way users and CI
// do, and checks that no QEMU of that run survives it.
func TestNoOrphans(t *testing.T) {
	tg := fixtureTarget(t, "hardened") // skips unless -fixtures
	// Warm the cache for the runs below, so that their QEMU starts well
	// within the shortest -timeout.
	for _, f := range fixtures {
		p := env.Prepare(t.Context(), tg.Kernel, filepath.Join(env.Repo, "kmod", "fixtures", f.name+".patch"))
		if err := p.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.BaseImage(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		// end ends the run; gopid is the go command's, which leads
		// its own process group.
		end func(t *testing.T, gopid int, dir string)
	}{
		{name: "go test -timeout", args: []string{"-timeout", "25s"}, end: func(*testing.T, int, string) {}},
		{name: "SIGTERM to go", end: func(t *testing.T, gopid int, _ string) {
			if err := syscall.Kill(gopid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "SIGKILL to the test binary", end: func(t *testing.T, _ int, dir string) {
			// A child between fork and exec still shows its parent's
			// command line: keep only matches whose parent is no match.
			pids := outermost(processesWith("vmtests.test", dir))
			if len(pids) != 1 {
				t.Fatalf("found %d test binaries of the run", len(pids))
			}
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Ctrl-C", end: func(t *testing.T, gopid int, _ string) {
			// A terminal sends SIGINT to the whole foreground group.
			if err := syscall.Kill(-gopid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		// One at a time: runs of their own contend for the cache locks,
		// and the -timeout one must reach its QEMU within 25 s.
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"test", "./vmtests", "-count=1", "-fixtures", "-run", "^TestFixtures$/^hang-on-input$", "-artifacts-dir", dir}, tt.args...)
			cmd := exec.Command("go", args...)
			cmd.Dir = env.Repo
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				_ = cmd.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				// Whatever happened, leave nothing of this run behind.
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				for _, pid := range processesWith("qemu-system", dir) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				<-exited
			})

			deadline := time.Now().Add(3 * time.Minute)
			for len(processesWith("qemu-system", dir)) == 0 {
				select {
				case <-exited:
					t.Fatalf("the run ended before its QEMU started:\n%s", out.String())
				case <-time.After(200 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no QEMU of the run after 3 minutes:\n%s", out.String())
				}
			}
			start := time.Now()
			tt.end(t, cmd.Process.Pid, dir)
			for len(processesWith("qemu-system", dir)) > 0 {
				if time.Since(start) > 40*time.Second {
					t.Fatalf("QEMU %v of the run still runs %v after it was ended:\n%s", processesWith("qemu-system", dir), time.Since(start), out.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Logf("QEMU gone %.1fs after the run was ended", time.Since(start).Seconds())
		})
	}
}
