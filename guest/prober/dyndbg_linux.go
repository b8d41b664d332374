package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
	"golang.org/x/sys/unix"
)

// Where kernels with CONFIG_DYNAMIC_DEBUG take their commands: /proc
// since 5.x, kernelio.Debugfs always.
const (
	dynamicDebugProc    = "/proc/dynamic_debug/control"
	dynamicDebugDebugfs = kernelio.Debugfs + "/dynamic_debug/control"
)

// debugFlood is how many greetings the reply-failed check sends to a
// socket that never reads: enough to overrun its 4 KB buffer many times.
const debugFlood = 200

// stepDebugLog turns on the module's pr_debug lines through dynamic debug
// for the length of the step and checks the three the module promises:
// the line for each message, the one for a malformed header, and the one
// for a reply that could not be sent.
func stepDebugLog(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	control := dynamicDebugProc
	if _, err := os.Stat(control); err != nil {
		_ = kernelio.MountDebugfs()
		control = dynamicDebugDebugfs
	}
	if _, err := os.Stat(control); err != nil {
		return "", skipf("this kernel has no dynamic debug (CONFIG_DYNAMIC_DEBUG off): the module's pr_debug lines cannot be turned on")
	}
	if err := os.WriteFile(control, []byte("module "+greet.ModuleName+" +p"), 0); err != nil {
		return "", fmt.Errorf("turn on the module's debug lines in %s: %w", control, err)
	}
	defer os.WriteFile(control, []byte("module "+greet.ModuleName+" -p"), 0)
	if n, err := kernelio.EnabledDebugSites(control); err != nil || n == 0 {
		return "", fmt.Errorf("%s lists no enabled debug line of %s after +p (%v): the module was built without pr_debug call sites?", control, greet.ModuleName, err)
	}

	tail, err := kernelio.OpenKmsgTail()
	if err != nil {
		return "", err
	}
	defer tail.Close()
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	port := s.Conn.PID()

	// A greeting, answered.
	payload := greet.EncodeGreeting("debug me")
	seq, msg := s.Message(greet.TypeGreet, rawgreet.ReqAck, payload)
	if _, err := s.Exchange(msg); err != nil {
		return "", fmt.Errorf("greeting seq %d: %w", seq, err)
	}
	// A header that claims more than the datagram holds.
	bad := append(rawnl.AppendHeader(nil, rawnl.Header{Len: 100, Type: greet.TypeGreet, Flags: rawgreet.ReqAck, Seq: s.Next()}), bytes.Repeat([]byte{'a'}, 8)...)
	if _, err := s.Exchange(bad); err != nil {
		return "", fmt.Errorf("malformed datagram: %w", err)
	}
	want := []string{
		fmt.Sprintf(greet.LogDebugMessage, greet.TypeGreet, rawnl.HeaderLen+len(payload), rawgreet.ReqAck, seq, port),
		fmt.Sprintf(greet.LogDebugMalformed, 100, len(bad)),
	}
	lines, err := kernelio.ModuleLines(tail)
	if err != nil {
		return "", err
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			return "", fmt.Errorf("want the debug line %q, got %q", w, lines)
		}
	}

	// Replies to a socket whose buffer is full cannot be sent.
	full, err := rawnl.Dial(p.cfg.Protocol)
	if err != nil {
		return "", err
	}
	defer full.Close()
	if err := full.SetReadBuffer(neverReadBuffer); err != nil {
		return "", err
	}
	for i := range debugFlood {
		m := rawnl.NewMessage(rawnl.Header{Type: greet.TypeGreet, Flags: rawgreet.ReqAck, Seq: uint32(i + 1)}, greet.EncodeGreeting("full"))
		if err := full.SendFlags(m, unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return "", fmt.Errorf("flood greeting %d: %w", i+1, err)
		}
	}
	failed := fmt.Sprintf(greet.LogDebugReplyFailed, full.PID())
	failures, err := logLines(tail, failed)
	if err != nil {
		return "", err
	}
	n := len(failures)
	if n == 0 {
		return "", fmt.Errorf("%d greetings to a socket with a %d-byte buffer that never reads: want lines %q, got none", debugFlood, neverReadBuffer, failed+"N")
	}
	return fmt.Sprintf("message and malformed-header lines exact; %d of %d replies to a full socket logged as failed", n, debugFlood), nil
}
