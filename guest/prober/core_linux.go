package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Timing of the checks. Under TCG emulation everything is slow, so the
// waits for answers that must come are generous. Answers that must not
// come need no wait: a sentinel greeting follows (the kernel handles a
// datagram synchronously in sendmsg, so anything it answers arrives
// before the sentinel's reply). extraWait only bounds the look for
// doubled answers on the shared socket.
const extraWait = 200 * time.Millisecond

// answerTimeout bounds the wait for an answer that must come. It is set
// once, when the configuration is read (newProber), to 2 s times the
// configuration's Slowdown: on a sanitizer kernel with several vCPUs on a
// busy host, a vCPU can stall for seconds.
var answerTimeout = baseAnswerTimeout

const baseAnswerTimeout = 2 * time.Second

const greetingText = "Hello from kmodtest"

// dial opens a greeting client after checking that the module is loaded.
func (p *prober) dial() (*greet.Client, error) {
	if err := p.requireModule(); err != nil {
		return nil, err
	}
	c, err := greet.Dial(p.cfg.Protocol, nil)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func stepInsmod(ctx context.Context, p *prober) (string, error) {
	if p.moduleLoaded() {
		return "", fmt.Errorf("insmod: module %s is already loaded before insmod", p.cfg.ModuleName)
	}
	if err := p.insmod(); err != nil {
		p.insmodErr = err
		return "", err
	}
	p.insmodErr = nil
	return "", nil
}

// greetOnce sends one greeting with NLM_F_ACK on a fresh socket. The
// result is nil only when nothing could be sent; err then says why.
func (p *prober) greetOnce(ctx context.Context) (*greet.Client, *greet.Result, error) {
	c, err := p.dial()
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Greet(timeoutCtx(ctx, answerTimeout), greetingText, netlink.Request|netlink.Acknowledge)
	if res == nil {
		c.Close()
		return nil, nil, err
	}
	return c, res, err
}

// stepReply greets once on a raw socket and checks the reply and the
// ack whole (rawgreet.Session.Check): a raw socket, because a reply with
// NLM_F_MULTI would make the netlink package wait for the end of a
// multipart answer instead of showing it.
func stepReply(ctx context.Context, p *prober) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	seq, msg := s.Message(greet.TypeGreet, rawgreet.ReqAck, greet.EncodeGreeting(greetingText))
	start := time.Now()
	if err := s.Send(msg); err != nil {
		return "", err
	}
	got, err := s.WaitAck(seq, answerTimeout)
	elapsed := time.Since(start)
	want := rawgreet.ReplyAck(seq)
	if err == nil && slices.Equal(want, got) {
		return fmt.Sprintf("reply and ack after %d ms", elapsed.Milliseconds()), nil
	}
	note := ""
	if !slices.ContainsFunc(got, func(d string) bool { return strings.HasPrefix(d, "reply ") }) {
		note = " (no reply)"
	}
	if err != nil {
		return "", fmt.Errorf("reply: want %s, got %s%s: %v", rawgreet.List(want), rawgreet.List(got), note, err)
	}
	return "", fmt.Errorf("reply: want %s, got %s%s", rawgreet.List(want), rawgreet.List(got), note)
}

func stepAck(ctx context.Context, p *prober) (string, error) {
	c, res, err := p.greetOnce(ctx)
	if res == nil {
		return "", err
	}
	defer c.Close()
	seq := res.Request.Header.Sequence
	want := fmt.Sprintf("want NLMSG_ERROR error 0 seq %d after the reply", seq)
	switch {
	case res.Ack == nil:
		return "", fmt.Errorf("ack: %s, got %s within %s (no ack)", want, res.Summary(), answerTimeout)
	case res.AckErrno != 0:
		return "", fmt.Errorf("ack: %s, got error -%s", want, greet.ErrnoName(res.AckErrno))
	case errors.Is(err, greet.ErrNoReply):
		return "", fmt.Errorf("ack: %s, got %s (ack without a reply before it)", want, res.Summary())
	case err != nil:
		return "", fmt.Errorf("ack: %w", err)
	}
	// Anything more for seq would be queued before the answers to a
	// second greeting: the kernel answers inside the sender's send call.
	extra, err := strays(ctx, c, seq)
	if err != nil {
		return "", fmt.Errorf("ack: greeting after the ack: %w", err)
	}
	if len(extra) > 0 {
		return "", fmt.Errorf("ack: want nothing after the ack of seq %d, got %s", seq, greet.Summarize(extra))
	}
	return "", nil
}

// strays greets again with NLM_F_ACK and returns what arrived for seq
// before that greeting's answers. No wait is needed: the module answers
// synchronously, so anything it sent for seq is already queued.
func strays(ctx context.Context, c *greet.Client, seq uint32) ([]netlink.Message, error) {
	res, err := c.Greet(timeoutCtx(ctx, answerTimeout), greetingText, netlink.Request|netlink.Acknowledge)
	var out []netlink.Message
	if res != nil {
		for _, m := range res.Messages {
			if m.Header.Sequence == seq {
				out = append(out, m)
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	return nil, err
}

func stepNoReplyWithoutAck(ctx context.Context, p *prober) (string, error) {
	c, err := p.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Greet(ctx, greetingText, netlink.Request)
	if err != nil {
		return "", err
	}
	seq := res.Request.Header.Sequence
	got, err := strays(ctx, c, seq)
	if len(got) > 0 {
		return "", fmt.Errorf("greeting seq %d without NLM_F_ACK: want nothing, got %s", seq, greet.Summarize(got))
	}
	if err != nil {
		// The module must still answer a greeting that asks.
		return "", fmt.Errorf("greeting with NLM_F_ACK after one without: %w", err)
	}
	return "", nil
}

func stepOriginalClient(ctx context.Context, p *prober) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	const seq = 1
	msg := rawnl.NewMessage(rawnl.Header{
		Type:  greet.TypeGreet,
		Flags: rawnl.FlagAck,
		Seq:   seq,
		PID:   uint32(unix.Getpid()),
	}, greet.EncodeOriginalGreeting(greetingText))
	if err := s.Send(msg); err != nil {
		return "", err
	}
	got, err := s.WaitAck(seq, answerTimeout)
	want := rawgreet.ReplyAck(seq)
	if err != nil {
		return "", fmt.Errorf("original client (flags NLM_F_ACK only, nlmsg_pid %d, %d-byte payload): want %v, got %v: %v",
			unix.Getpid(), greet.OriginalPayloadLen, want, got, err)
	}
	if !slices.Equal(want, got) {
		return "", fmt.Errorf("original client (flags NLM_F_ACK only, nlmsg_pid %d, %d-byte payload): want %v, got %v",
			unix.Getpid(), greet.OriginalPayloadLen, want, got)
	}
	return fmt.Sprintf("port %d, pid %d", s.Conn.PID(), unix.Getpid()), nil
}

func stepRmmod(ctx context.Context, p *prober) (string, error) {
	if !p.moduleLoaded() {
		return "", p.requireModule()
	}
	tries, err := p.rmmod(3 * time.Second)
	if err != nil {
		return "", err
	}
	if tries > 1 {
		return fmt.Sprintf("unloaded after %d tries (busy at first)", tries), nil
	}
	return "", nil
}

func stepSocketGone(ctx context.Context, p *prober) (string, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, p.cfg.Protocol)
	if err == nil {
		unix.Close(fd)
		return "", fmt.Errorf("socket(AF_NETLINK, SOCK_RAW, %d) after rmmod: want EPROTONOSUPPORT, got a socket", p.cfg.Protocol)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		return "", fmt.Errorf("socket(AF_NETLINK, SOCK_RAW, %d) after rmmod: want EPROTONOSUPPORT, got %v",
			p.cfg.Protocol, err)
	}
	return "", nil
}

// timeoutCtx returns ctx limited to d, released soon after its deadline.
func timeoutCtx(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	time.AfterFunc(d+time.Second, cancel)
	return c
}

// sleepCtx waits for d, or until ctx ends (its error then).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
