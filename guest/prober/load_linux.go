package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Message counts of the load steps: thousands in all, but well under
// 20 s each under TCG emulation.
const (
	concurrentSockets   = 16
	concurrentGreetings = 100 // per socket
	sharedGoroutines    = 8
	sharedGreetings     = 200 // per goroutine
	sharedWindow        = 64  // greetings outstanding on the shared socket
	neverReadGreetings  = 2000
	neverReadBuffer     = 4096
	leakWarmup          = 500
	leakGreetings       = 4000
	leakWindow          = 32
	leakLimitKB         = 2 << 10
)

// maxErrors is how many individual errors a load step quotes.
const maxErrors = 5

// errorList collects errors from several goroutines and quotes a few.
type errorList struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (l *errorList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < maxErrors {
		l.first = append(l.first, err.Error())
	}
}

func (l *errorList) err(what string) error {
	if l.n == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d failures, first: %s", what, l.n, strings.Join(l.first, "; "))
}

func stepConcurrentSockets(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	var errs errorList
	errc := make(chan error, concurrentSockets)
	start := time.Now()
	for g := range concurrentSockets {
		goSafe(errc, func() error {
			c, err := greet.Dial(p.cfg.Protocol, nil)
			if err != nil {
				return fmt.Errorf("goroutine %d: %w", g, err)
			}
			defer c.Close()
			for i := range concurrentGreetings {
				if ctx.Err() != nil {
					return fmt.Errorf("goroutine %d: stopped after %d greetings: %w", g, i, ctx.Err())
				}
				_, err := c.Greet(timeoutCtx(ctx, answerTimeout), fmt.Sprintf("goroutine %d greeting %d", g, i), netlink.Request|netlink.Acknowledge)
				if err != nil {
					// One failure is enough to judge this socket;
					// going on would wait out a timeout per greeting.
					return fmt.Errorf("goroutine %d port %d greeting %d: %w", g, c.PID(), i, err)
				}
			}
			return nil
		})
	}
	for range concurrentSockets {
		if err := <-errc; err != nil {
			errs.add(err)
		}
	}
	total := concurrentSockets * concurrentGreetings
	if err := errs.err(fmt.Sprintf("%d sockets x %d greetings", concurrentSockets, concurrentGreetings)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d greetings on %d sockets in %d ms", total, concurrentSockets, time.Since(start).Milliseconds()), nil
}

// A tally counts the answers per sequence number.
type tally struct {
	mu      sync.Mutex
	replies map[uint32]int
	acks    map[uint32]int
	bad     errorList
}

func newTally() *tally {
	return &tally{replies: map[uint32]int{}, acks: map[uint32]int{}}
}

// add records m and reports whether it was the first ack of its seq.
func (t *tally) add(m rawnl.Message, port uint32) (firstAck bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := m.Header.Seq
	switch m.Header.Type {
	case greet.TypeGreet:
		t.replies[seq]++
		if err := greet.CheckAnswer(m, greet.ExpectedReply(seq, port)); err != nil {
			t.bad.add(fmt.Errorf("seq %d: %w", seq, err))
		}
		if t.acks[seq] > 0 {
			t.bad.add(fmt.Errorf("reply seq %d after its ack", seq))
		}
	case rawnl.TypeError:
		t.acks[seq]++
		if errno, ok := m.Errno(); !ok || errno != 0 {
			t.bad.add(errors.New(rawgreet.Describe(m, port)))
		}
		if t.replies[seq] == 0 {
			t.bad.add(fmt.Errorf("ack seq %d before its reply", seq))
		}
		return t.acks[seq] == 1
	default:
		t.bad.add(fmt.Errorf("unexpected %s", rawgreet.Describe(m, port)))
	}
	return false
}

// check compares the tally with the sequence numbers sent.
func (t *tally) check(sent []uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var missingReply, missingAck, dupReply, dupAck []uint32
	want := map[uint32]bool{}
	for _, seq := range sent {
		want[seq] = true
		switch t.replies[seq] {
		case 0:
			missingReply = append(missingReply, seq)
		case 1:
		default:
			dupReply = append(dupReply, seq)
		}
		switch t.acks[seq] {
		case 0:
			missingAck = append(missingAck, seq)
		case 1:
		default:
			dupAck = append(dupAck, seq)
		}
	}
	var stray []uint32
	for seq := range t.replies {
		if !want[seq] {
			stray = append(stray, seq)
		}
	}
	for seq := range t.acks {
		if !want[seq] {
			stray = append(stray, seq)
		}
	}
	var problems []string
	note := func(what string, seqs []uint32) {
		if len(seqs) > 0 {
			problems = append(problems, fmt.Sprintf("%d %s (seq %s)", len(seqs), what, seqList(seqs)))
		}
	}
	note("replies missing", missingReply)
	note("acks missing (no ack)", missingAck)
	note("replies doubled", dupReply)
	note("acks doubled", dupAck)
	note("answers with a sequence number never sent", stray)
	if err := t.bad.err("wrong answers"); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func seqList(seqs []uint32) string {
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var parts []string
	for i, s := range seqs {
		if i == maxErrors {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, strconv.FormatUint(uint64(s), 10))
	}
	return strings.Join(parts, ", ")
}

func stepSharedSocket(ctx context.Context, p *prober) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	port := s.Conn.PID()
	t := newTally()
	total := sharedGoroutines * sharedGreetings
	window := make(chan struct{}, sharedWindow)
	readerDone := make(chan error, 1)
	start := time.Now()

	// One reader collects every answer and frees a window slot per ack.
	goSafe(readerDone, func() error {
		acked := 0
		for acked < total {
			msgs, err := s.Conn.ReceiveMessages(answerTimeout)
			if errors.Is(err, rawnl.ErrTimeout) {
				return fmt.Errorf("reader: nothing for %s after %d of %d acks", answerTimeout, acked, total)
			}
			for _, m := range msgs {
				if t.add(m, port) {
					acked++
					select {
					case <-window:
					default:
					}
				}
			}
			if err != nil {
				return fmt.Errorf("reader: %w", err)
			}
		}
		return nil
	})

	var (
		sentMu   sync.Mutex
		sent     []uint32
		sendErrs errorList
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for g := range sharedGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sharedGreetings {
				select {
				case window <- struct{}{}:
				case <-stop:
					return
				case <-ctx.Done():
					return
				}
				seq := uint32((g+1)*100000 + i + 1)
				msg := rawnl.NewMessage(rawnl.Header{Type: greet.TypeGreet, Flags: rawgreet.ReqAck, Seq: seq},
					greet.EncodeGreeting(fmt.Sprintf("goroutine %d greeting %d", g, i)))
				if err := s.Conn.Send(msg); err != nil {
					sendErrs.add(fmt.Errorf("goroutine %d seq %d: %w", g, seq, err))
					<-window
					continue
				}
				sentMu.Lock()
				sent = append(sent, seq)
				sentMu.Unlock()
			}
		}()
	}
	var readErr error
	select {
	case readErr = <-readerDone:
	case <-ctx.Done():
		readErr = ctx.Err()
	}
	close(stop)
	wg.Wait()
	// Late answers: doubles after the last ack, or the rest after a failure.
	more, _ := s.Conn.Collect(extraWait, time.Second)
	for _, m := range more {
		t.add(m, port)
	}

	var problems []string
	if err := sendErrs.err("send"); err != nil {
		problems = append(problems, err.Error())
	}
	if readErr != nil {
		problems = append(problems, readErr.Error())
	}
	sentMu.Lock()
	if err := t.check(sent); err != nil {
		problems = append(problems, err.Error())
	}
	n := len(sent)
	sentMu.Unlock()
	if len(problems) > 0 {
		return "", fmt.Errorf("%d goroutines sharing port %d, %d greetings sent of %d: %s",
			sharedGoroutines, port, n, total, strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%d greetings from %d goroutines on one socket in %d ms", n, sharedGoroutines, time.Since(start).Milliseconds()), nil
}

func stepNeverReads(ctx context.Context, p *prober) (string, error) {
	if err := p.requireModule(); err != nil {
		return "", err
	}
	c, err := rawnl.Dial(p.cfg.Protocol)
	if err != nil {
		return "", err
	}
	if err := c.SetReadBuffer(neverReadBuffer); err != nil {
		c.Close()
		return "", err
	}
	sendErrs := map[string]int{}
	var unexpected error
	for i := range neverReadGreetings {
		msg := rawnl.NewMessage(rawnl.Header{Type: greet.TypeGreet, Flags: rawgreet.ReqAck, Seq: uint32(i + 1)},
			greet.EncodeGreeting("I never read"))
		err := c.SendFlags(msg, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN):
			sendErrs[unix.ErrnoName(errnoFrom(err))]++
		default:
			unexpected = fmt.Errorf("greeting %d: %w", i+1, err)
		}
		if unexpected != nil || ctx.Err() != nil {
			break
		}
	}
	// Look at what is queued, without reading it all: one receive shows
	// whether the overflow was reported.
	_, rerr := c.Receive(0)
	recvNote := "first receive: a datagram"
	switch {
	case errors.Is(rerr, unix.ENOBUFS):
		recvNote = "first receive: ENOBUFS"
	case errors.Is(rerr, rawnl.ErrTimeout):
		recvNote = "first receive: nothing queued"
	case rerr != nil:
		recvNote = "first receive: " + rerr.Error()
	}
	if err := c.Close(); err != nil {
		return "", fmt.Errorf("close the flooded socket: %w", err)
	}
	if unexpected != nil {
		return "", fmt.Errorf("flooding without reading: want success or ENOBUFS, got %w", unexpected)
	}
	if err := p.greetHere(ctx, "fresh socket after a flood"); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d greetings with NLM_F_ACK, never read; send errors %v; %s", neverReadGreetings, sendErrs, recvNote), nil
}

func errnoFrom(err error) unix.Errno {
	var e unix.Errno
	errors.As(err, &e)
	return e
}

// pipeline sends n greetings with text on s, keeping window greetings
// outstanding, and checks every answer.
func pipeline(ctx context.Context, s *rawgreet.Session, n, window int, text string) error {
	t := newTally()
	port := s.Conn.PID()
	payload := greet.EncodeGreeting(text)
	var sent []uint32
	outstanding, acked := 0, 0
	for acked < n {
		for outstanding < window && len(sent) < n {
			seq, msg := s.Message(greet.TypeGreet, rawgreet.ReqAck, payload)
			if err := s.Conn.Send(msg); err != nil {
				return fmt.Errorf("greeting %d: %w", len(sent)+1, err)
			}
			sent = append(sent, seq)
			outstanding++
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped after %d of %d greetings: %w", acked, n, ctx.Err())
		}
		msgs, err := s.Conn.ReceiveMessages(answerTimeout)
		if errors.Is(err, rawnl.ErrTimeout) {
			return fmt.Errorf("no answer within %s after %d of %d greetings were acked; %v", answerTimeout, acked, n, t.check(sent))
		}
		for _, m := range msgs {
			if t.add(m, port) {
				acked++
				outstanding--
			}
		}
		if err != nil {
			return err
		}
	}
	return t.check(sent)
}

func stepLeak(ctx context.Context, p *prober) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	text := strings.Repeat("L", greet.MaxText)
	if err := pipeline(ctx, s, leakWarmup, leakWindow, text); err != nil {
		return "", fmt.Errorf("warm-up of %d greetings: %w", leakWarmup, err)
	}
	before, err := kernelio.ReadSUnreclaim()
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := pipeline(ctx, s, leakGreetings, leakWindow, text); err != nil {
		return "", fmt.Errorf("%d greetings of %d bytes: %w", leakGreetings, greet.MaxText, err)
	}
	d := time.Since(start)
	after, err := kernelio.ReadSUnreclaim()
	if err != nil {
		return "", err
	}
	grew := after - before
	msg := fmt.Sprintf("slab grew by %.1f MiB over %d greetings (SUnreclaim %d kB -> %d kB, %d ms)",
		float64(grew)/1024, leakGreetings, before, after, d.Milliseconds())
	if grew > leakLimitKB {
		return "", fmt.Errorf("%s: a per-message leak? (limit %d MiB)", msg, leakLimitKB>>10)
	}
	return msg, nil
}
