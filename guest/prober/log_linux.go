package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/mdlayher/netlink"
)

// logText is the greeting-log step's text: in its first LogTextMax bytes
// every class of byte that %pE treats apart (printable, whitespace
// escapes, \e, octal escapes, a C1 control inside UTF-8, Latin-1), and
// after them bytes that the line must not show.
var logText = func() string {
	head := "log\ttab \x1b\x01\x7f \\ \"q\" caf\xc3\xa9 \xc2\x85 "
	head += strings.Repeat(".", greet.LogTextMax-len(head))
	return head + "|past the 64-byte cap: never logged|"
}()

// logFlood is how many greetings the rate-limit check sends at once:
// well over greet.LogBurst.
const logFlood = 40

// stepGreetingLog checks the line the module logs for a greeting: its
// exact text (the first 64 bytes, escaped as %*pE does) and its rate
// limit (at most a burst of lines for a flood of greetings).
func stepGreetingLog(ctx context.Context, p *prober) (string, error) {
	tail, err := kernelio.OpenKmsgTail()
	if err != nil {
		return "", err
	}
	defer tail.Close()

	c, err := p.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	prefix := fmt.Sprintf(greet.LogGreeting, c.PID())
	want := string(greet.LogEscape([]byte(logText)[:greet.LogTextMax]))

	// Earlier steps' greetings may have used up the rate limit's burst:
	// greet again until a new interval lets the line through.
	start := time.Now()
	var got []string
	sends := 0
	for len(got) == 0 {
		if time.Since(start) > greet.LogInterval+answerTimeout {
			return "", fmt.Errorf("%d greetings over %s (more than the rate limit's %s interval): no kernel log line starting %q",
				sends, time.Since(start).Round(time.Millisecond), greet.LogInterval, prefix)
		}
		res, err := c.Greet(timeoutCtx(ctx, answerTimeout), logText, netlink.Request|netlink.Acknowledge)
		if err == nil {
			err = greet.CheckGreeting(res, c.PID())
		}
		if err != nil {
			return "", fmt.Errorf("greeting of %d bytes: %w", len(logText), err)
		}
		sends++
		lines, err := logLines(tail, prefix)
		if err != nil {
			return "", err
		}
		got = lines
		if len(got) == 0 {
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return "", err
			}
		}
	}
	if got[0] != want {
		return "", fmt.Errorf("greeting of %d bytes: want the log line %q, got %q (the first %d bytes of the text, escaped as %%*pE does)",
			len(logText), prefix+want, prefix+got[0], greet.LogTextMax)
	}
	waited := time.Since(start)

	flood, err := p.dial()
	if err != nil {
		return "", err
	}
	defer flood.Close()
	floodPrefix := fmt.Sprintf(greet.LogGreeting, flood.PID())
	for i := range logFlood {
		// The kernel runs the module in sendmsg: once Send returns, the
		// greeting has been logged or suppressed.
		_, err := flood.Conn().Send(netlink.Message{
			Header: netlink.Header{Type: greet.TypeGreet, Flags: netlink.Request},
			Data:   greet.EncodeGreeting(fmt.Sprintf("flood %d", i)),
		})
		if err != nil {
			return "", fmt.Errorf("flood greeting %d: %w", i, err)
		}
	}
	lines, err := logLines(tail, floodPrefix)
	if err != nil {
		return "", err
	}
	if len(lines) > greet.LogBurst {
		return "", fmt.Errorf("%d greetings sent at once: want at most %d log lines (rate limited), got %d",
			logFlood, greet.LogBurst, len(lines))
	}
	return fmt.Sprintf("line %q after %d greeting(s) in %s; %d greetings at once: %d lines",
		got[0], sends, waited.Round(time.Millisecond), logFlood, len(lines)), nil
}

// logLines returns the text after prefix of the module's lines that tail
// has not returned yet.
func logLines(tail *kernelio.KmsgTail, prefix string) ([]string, error) {
	lines, err := kernelio.ModuleLines(tail)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lines {
		if text, ok := strings.CutPrefix(l, prefix); ok {
			out = append(out, text)
		}
	}
	return out, nil
}
