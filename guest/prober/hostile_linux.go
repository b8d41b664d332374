package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
)

// The hostile-input steps: each sends rawgreet's cases of its name on one
// raw socket and fails with every answer that differs from the protocol's.

func stepShortDatagrams(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.ShortDatagrams())
}

func stepBadLength(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.BadLength())
}

func stepEmptyGreeting(ctx context.Context, p *prober) (string, error) {
	return p.runRawCasesUnlogged(ctx, rawgreet.EmptyGreeting())
}

func stepTextLimits(ctx context.Context, p *prober) (string, error) {
	return p.runRawCasesUnlogged(ctx, rawgreet.TextLimits())
}

func stepHugePayload(ctx context.Context, p *prober) (string, error) {
	return p.runRawCasesUnlogged(ctx, rawgreet.HugePayload())
}

func stepNoNUL(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.NoNUL())
}

func stepHighBytes(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.HighBytes())
}

func stepControlTypes(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.ControlTypes())
}

func stepUnknownType(ctx context.Context, p *prober) (string, error) {
	return p.runRawCasesUnlogged(ctx, rawgreet.UnknownType())
}

func stepBatch(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.Batch())
}

func stepSpoofedPid(ctx context.Context, p *prober) (string, error) {
	other, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer other.Close()
	info, err := p.runRawCases(rawgreet.SpoofedPid(other))
	if err != nil {
		return "", err
	}
	// The other socket must have received nothing: its own sentinel's
	// answers come first.
	got, err := other.Exchange()
	if err != nil {
		return "", fmt.Errorf("other socket (port %d): %w", other.Conn.PID(), err)
	}
	if len(got) > 0 {
		return "", fmt.Errorf("other socket (port %d) named in nlmsg_pid: want nothing, got %s", other.Conn.PID(), rawgreet.List(got))
	}
	return info, nil
}

// rawSession opens a raw socket of the module's protocol.
func (p *prober) rawSession() (*rawgreet.Session, error) {
	if err := p.requireModule(); err != nil {
		return nil, err
	}
	return rawgreet.Open(p.cfg.Protocol, answerTimeout)
}

// runRawCases runs cases on a raw socket of its own.
func (p *prober) runRawCases(cases []rawgreet.Case) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	return rawgreet.Run(s, cases)
}

// runRawCasesUnlogged runs the Invalid cases on a raw socket of their own
// and requires that the module logged no greeting line for them (it logs
// one for a valid greeting only), then runs the other cases as
// runRawCases does.
//
// The greeting line is rate limited, so a missing line proves nothing by
// itself: a valid marker greeting follows the invalid cases and must be
// logged. Within one rate-limit interval the count of lines only grows,
// so a marker that got through means the invalid greetings before it
// would have too. While the limit hides the marker, the round is
// repeated, until a new interval begins.
func (p *prober) runRawCasesUnlogged(ctx context.Context, cases []rawgreet.Case) (string, error) {
	var invalid, valid []rawgreet.Case
	for _, c := range cases {
		if c.Invalid {
			invalid = append(invalid, c)
		} else {
			valid = append(valid, c)
		}
	}
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	// Its sentinel, an NLMSG_NOOP, logs nothing.
	s.QuietSentinel = true
	tail, err := kernelio.OpenKmsgTail()
	if err != nil {
		return "", err
	}
	defer tail.Close()
	// Without the space after the colon: the line of an empty text may
	// end there.
	prefix := strings.TrimSuffix(fmt.Sprintf(greet.LogGreeting, s.Conn.PID()), " ")

	start := time.Now()
	var info string
	for round := 1; ; round++ {
		info, err = rawgreet.Run(s, invalid)
		if err != nil {
			return "", err
		}
		// Without NLM_F_ACK: the module logs it inside the send call and
		// answers nothing.
		_, d := s.Message(greet.TypeGreet, rawgreet.Req, greet.EncodeGreeting(markerText))
		if err := s.Send(d); err != nil {
			return "", fmt.Errorf("marker greeting %q: %w", markerText, err)
		}
		lines, err := logLines(tail, prefix)
		if err != nil {
			return "", err
		}
		var bad []string
		logged := false
		for _, l := range lines {
			if strings.TrimPrefix(l, " ") == markerText {
				logged = true
				continue
			}
			bad = append(bad, greet.Truncate(prefix+l, 100))
		}
		if len(bad) > 0 {
			return "", fmt.Errorf("%s of invalid greetings or other types: want no kernel log line %q for them (only a valid greeting is logged), got %d: %q",
				info, prefix, len(bad), bad)
		}
		if logged {
			info = fmt.Sprintf("%s, none logged (round %d, %d ms)", info, round, time.Since(start).Milliseconds())
			break
		}
		if time.Since(start) > greet.LogInterval+answerTimeout {
			return "", fmt.Errorf("%s: %d rounds over %s: the rate limit hid the marker greeting's line every time, so whether invalid greetings are logged cannot be told",
				info, round, time.Since(start).Round(time.Millisecond))
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return "", err
		}
	}
	if len(valid) == 0 {
		return info, nil
	}
	more, err := p.runRawCases(valid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; %s", info, more), nil
}

// markerText is the valid greeting that follows invalid ones: its line
// shows that the rate limit let lines through.
const markerText = "marker after invalid greetings"
