package main

import (
	"context"
	"fmt"

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
	return p.runRawCases(rawgreet.EmptyGreeting())
}

func stepTextLimits(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.TextLimits())
}

func stepHugePayload(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases(rawgreet.HugePayload())
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
	return p.runRawCases(rawgreet.UnknownType())
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
