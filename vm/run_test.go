package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
)

// writeEvents writes a result port file with the given events (and what
// else the port carried) to dir/results.log.
func writeEvents(t *testing.T, dir string, noise string, events ...contract.Event) string {
	t.Helper()
	data := []byte(noise)
	for _, e := range events {
		line, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, line...)
	}
	path := filepath.Join(dir, "results.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClassify: how a run ended, for each way it can end. The order
// matters: a run the caller stopped is an error whatever else happened,
// and a guest stopped after the prober's done event is no hang.
func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	exit := errors.New("exit status 1: qemu-system-x86_64: linux kernel too old to load a ram disk")
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		w        *watcher
		timedOut bool
		exitErr  error
		wantErr  string
		hang     string
		exit     bool
	}{
		{name: "clean power-off", ctx: context.Background(), w: &watcher{}},
		{name: "stopped by the caller", ctx: canceled, w: &watcher{silent: "no word"}, timedOut: true, exitErr: exit, wantErr: "run stopped: context canceled"},
		{name: "halted after done", ctx: context.Background(), w: &watcher{done: true}, exitErr: errors.New("signal: killed")},
		{name: "silent prober", ctx: context.Background(), w: &watcher{silent: "no word from the prober for 1m30s"}, timedOut: true, exitErr: errors.New("signal: killed"), hang: "no word from the prober for 1m30s"},
		{name: "past the timeout", ctx: context.Background(), w: &watcher{}, timedOut: true, exitErr: errors.New("signal: killed"), hang: "VM still running after 4m0s"},
		{name: "QEMU failed", ctx: context.Background(), w: &watcher{}, exitErr: exit, exit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := &Output{}
			err := classify(tc.ctx, run, tc.w, tc.timedOut, 4*time.Minute, tc.exitErr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if run.Hung != (tc.hang != "") || run.HangReason != tc.hang {
				t.Errorf("hung %v (%q), want %q", run.Hung, run.HangReason, tc.hang)
			}
			if (run.ExitErr != nil) != tc.exit {
				t.Errorf("exit error %v, want one: %v", run.ExitErr, tc.exit)
			}
		})
	}
}

// TestWatcherSilence: a prober that goes quiet is reported with the
// limit it passed, shorter and named so once the console showed a kernel
// report.
func TestWatcherSilence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alarm bool
		want  string
	}{
		{name: "quiet", want: "no word from the prober for 300ms"},
		{name: "quiet after a kernel report", alarm: true, want: "no word from the prober for 200ms after the kernel reported an error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeEvents(t, t.TempDir(), "", contract.Event{Kind: contract.KindBegin, Step: contract.StepReply})
			w := &watcher{path: path, stepTimeout: 300 * time.Millisecond, alarmSilence: 200 * time.Millisecond, grace: time.Minute}
			if tc.alarm {
				w.alarm()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			w.watch(ctx, cancel)
			if got := w.silentFor(); got != tc.want {
				t.Errorf("silent %q, want %q", got, tc.want)
			}
			if w.stoppedAfterDone() {
				t.Errorf("a silent guest counted as done")
			}
		})
	}
}

// TestWatcherFollowsEvents: a prober that keeps writing is never silent.
func TestWatcherFollowsEvents(t *testing.T) {
	dir := t.TempDir()
	path := writeEvents(t, dir, "")
	w := &watcher{path: path, stepTimeout: 400 * time.Millisecond, grace: time.Minute}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	go func() {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.Write([]byte("KMODTEST {\"kind\":\"begin\"}\n"))
			}
		}
	}()
	w.watch(ctx, func() {})
	if got := w.silentFor(); got != "" {
		t.Errorf("a prober writing every 100ms reported silent: %q", got)
	}
}

// TestWaitReady: Save waits for the prober's ready event; a prober that
// runs steps instead, and a QEMU that exits, are errors that say so.
func TestWaitReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []contract.Event
		exited  bool
		wantErr string
	}{
		{name: "ready", events: []contract.Event{{Kind: contract.KindReady}}},
		{name: "ran steps", events: []contract.Event{{Kind: contract.KindBegin, Step: contract.StepInsmod}}, wantErr: "without waiting for a job"},
		{name: "QEMU exited", exited: true, wantErr: "QEMU exited"},
		{name: "never ready", wantErr: "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeEvents(t, t.TempDir(), "kmodtest: noise\n", tc.events...)
			p := &qemuProcess{exited: make(chan struct{})}
			if tc.exited {
				p.err = errors.New("exit status 1")
				close(p.exited)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err := waitReady(ctx, p, path)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("want error %q, got %v", tc.wantErr, err)
				}
			case err != nil:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
}

// TestCollect: an ended run's console, events and cut-short lines come
// from its directory.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	writeEvents(t, dir, "", contract.Event{Kind: contract.KindBegin, Step: contract.StepInsmod},
		contract.Event{Kind: contract.KindEnd, Step: contract.StepInsmod, Status: contract.StatusPass})
	f, err := os.OpenFile(filepath.Join(dir, "results.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`KMODTEST {"kind":"begin","st`)
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "console.log"), []byte("Linux version 6.1\r\nRun /init\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &qemuProcess{cfg: Config{Dir: dir}, cmdline: "qemu-system-x86_64 -m 512", start: time.Now()}
	run, err := p.collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Events) != 2 || len(run.BadLines) != 1 || strings.Join(run.Console, "|") != "Linux version 6.1|Run /init" || run.Cmdline != p.cmdline {
		t.Errorf("unexpected run: %d events, bad %q, console %q, cmdline %q", len(run.Events), run.BadLines, run.Console, run.Cmdline)
	}
	if _, err := (&qemuProcess{cfg: Config{Dir: t.TempDir()}}).collect(); err == nil || !strings.Contains(err.Error(), "read console log") {
		t.Errorf("a run without a console log: want an error naming it, got %v", err)
	}
}
