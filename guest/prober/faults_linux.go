package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
	"golang.org/x/sys/unix"
)

// maxFaultPoints bounds the sweep of one kind of greeting.
const maxFaultPoints = 400

// A faultKind is one kind of datagram the sweep fails allocations in.
type faultKind struct {
	name string
	// build returns the datagram and, per message, the complete answer
	// the protocol promises (describe's form).
	build func(s *rawgreet.Session) (datagram []byte, full map[uint32][]string)
}

var faultKinds = []faultKind{
	{"greeting with ack", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq, m := s.Message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting(greetingText))
		return m, map[uint32][]string{seq: rawgreet.ReplyAck(seq)}
	}},
	{"greeting without ack", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq, m := s.Message(greet.TypeGreet, rawnl.FlagRequest, greet.EncodeGreeting(greetingText))
		return m, map[uint32][]string{seq: nil}
	}},
	{"empty greeting", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq, m := s.Message(greet.TypeGreet, rawnl.FlagRequest, []byte{0})
		return m, map[uint32][]string{seq: rawgreet.ErrAck(seq, "EINVAL")}
	}},
	{"unknown type with ack", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq, m := s.Message(greet.TypeGreet+1, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting(greetingText))
		return m, map[uint32][]string{seq: rawgreet.ErrAck(seq, "EOPNOTSUPP")}
	}},
	{"control message with ack", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq, m := s.Message(rawnl.TypeNoop, rawnl.FlagRequest|rawnl.FlagAck, nil)
		return m, map[uint32][]string{seq: rawgreet.AckOnly(seq)}
	}},
	{"two greetings with ack in one datagram", func(s *rawgreet.Session) ([]byte, map[uint32][]string) {
		seq1, m1 := s.Message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting(greetingText))
		seq2, m2 := s.Message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting(greetingText))
		return append(m1, m2...), map[uint32][]string{seq1: rawgreet.ReplyAck(seq1), seq2: rawgreet.ReplyAck(seq2)}
	}},
}

// allowedOutcome checks the answers got to one message under an injected
// allocation failure against the full answer: the full answer, a part of
// it that ends early (an answer that could not be allocated is lost, and
// the sender's socket gets ENOBUFS), or, where a reply was promised, an
// ack carrying an error instead. Never an ack of success without the
// reply before it, never anything else.
func allowedOutcome(full, got []string) (string, error) {
	switch {
	case slices.Equal(got, full):
		if len(full) == 0 {
			return "nothing", nil
		}
		return "full", nil
	case len(got) < len(full) && slices.Equal(got, full[:len(got)]):
		if len(got) == 0 {
			return "nothing", nil
		}
		return "partial", nil
	case len(got) == 1 && len(full) > 0 && strings.HasPrefix(full[0], "reply ") &&
		strings.HasPrefix(got[0], "ack ") && !strings.HasSuffix(got[0], " error 0"):
		return "error ack", nil
	}
	return "", fmt.Errorf("want %s or a part of it, or an error ack in place of a reply; got %s", rawgreet.List(full), rawgreet.List(got))
}

// An injection is the answers to one datagram sent with fail-nth N.
type injection struct {
	sendErr error
	// answers holds describe's form of each message, by sequence number.
	answers map[uint32][]string
	enobufs bool
}

// injectOnce sends datagram with the n-th fault point of the send failed.
// It reports injected=false when the send passed fewer than n fault
// points: the sweep of this kind is complete.
func injectOnce(s *rawgreet.Session, fn *kernelio.FailNthFile, n int, datagram []byte) (in injection, injected bool, err error) {
	if err := fn.Set(n); err != nil {
		return in, false, fmt.Errorf("write %d to %s: %w", n, kernelio.FailNth, err)
	}
	in.sendErr = s.Conn.Send(datagram)
	left, err := fn.Get()
	if err != nil {
		return in, false, fmt.Errorf("read %s: %w", kernelio.FailNth, err)
	}
	if left != 0 {
		if err := fn.Set(0); err != nil {
			return in, false, fmt.Errorf("reset %s: %w", kernelio.FailNth, err)
		}
		return in, false, nil
	}
	in.answers, in.enobufs, err = untilSentinel(s)
	return in, true, err
}

// untilSentinel greets with NLM_F_ACK and returns everything that arrived
// before the greeting's answers, by sequence number. A pending ENOBUFS
// (an answer the kernel could not allocate) is noted, not an error.
func untilSentinel(s *rawgreet.Session) (map[uint32][]string, bool, error) {
	seq, sentinel := s.Message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting("sentinel"))
	if err := s.Conn.Send(sentinel); err != nil {
		return nil, false, fmt.Errorf("sentinel greeting: %w", err)
	}
	got := map[uint32][]string{}
	enobufs := false
	end := time.Now().Add(answerTimeout)
	for {
		msgs, err := s.Conn.ReceiveMessages(time.Until(end))
		switch {
		case errors.Is(err, unix.ENOBUFS):
			enobufs = true
			continue
		case errors.Is(err, rawnl.ErrTimeout):
			return got, enobufs, fmt.Errorf("module stopped answering: no ack for the sentinel greeting seq %d within %s (got %v)", seq, answerTimeout, got)
		case err != nil:
			return got, enobufs, err
		}
		for _, m := range msgs {
			d := rawgreet.Describe(m, s.Conn.PID())
			if m.Header.Seq == seq {
				if m.Header.Type == rawnl.TypeError {
					if !slices.Equal(got[seq], []string{fmt.Sprintf("reply seq %d", seq)}) || d != fmt.Sprintf("ack seq %d error 0", seq) {
						return got, enobufs, fmt.Errorf("sentinel greeting seq %d after an injected failure: want a reply and an ack, got %v then %s", seq, got[seq], d)
					}
					delete(got, seq)
					return got, enobufs, nil
				}
			}
			got[m.Header.Seq] = append(got[m.Header.Seq], d)
		}
	}
}

// faultTally counts the outcomes of a sweep.
type faultTally struct {
	points   int
	outcomes map[string]int
	perKind  []string
}

func stepAllocFailures(ctx context.Context, p *prober) (string, error) {
	if _, err := os.Stat(kernelio.FailNth); err != nil {
		return "", skipf("this kernel has no %s (CONFIG_FAULT_INJECTION off): allocation failures cannot be injected", kernelio.FailNth)
	}
	if err := p.requireModule(); err != nil {
		return "", err
	}
	_ = kernelio.MountDebugfs()
	restore, note := kernelio.SetFailslab()
	defer restore()

	// fail-nth belongs to the thread: the whole sweep stays on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fn, err := kernelio.OpenFailNth()
	if err != nil {
		return "", fmt.Errorf("open %s: %w", kernelio.FailNth, err)
	}
	defer fn.Close()
	defer fn.Set(0)

	t := faultTally{outcomes: map[string]int{}}
	var fails []string
	for _, kind := range faultKinds {
		s, err := p.rawSession()
		if err != nil {
			return "", err
		}
		n := 1
		for ; n <= maxFaultPoints; n++ {
			if ctx.Err() != nil {
				s.Close()
				return "", fmt.Errorf("%s: stopped at fault point %d: %w", kind.name, n, ctx.Err())
			}
			datagram, full := kind.build(s)
			in, injected, err := injectOnce(s, fn, n, datagram)
			if err != nil {
				s.Close()
				return "", fmt.Errorf("%s, allocation %d failed: %w", kind.name, n, err)
			}
			if !injected {
				break
			}
			for seq := range in.answers {
				if _, ok := full[seq]; !ok {
					fails = append(fails, fmt.Sprintf("%s, allocation %d failed: answer for a sequence number never sent: %v", kind.name, n, in.answers[seq]))
				}
			}
			for seq, want := range full {
				outcome, err := allowedOutcome(want, in.answers[seq])
				if err != nil {
					fails = append(fails, fmt.Sprintf("%s, allocation %d failed (send: %v): seq %d: %v", kind.name, n, in.sendErr, seq, err))
					continue
				}
				t.outcomes[outcome]++
			}
		}
		s.Close()
		if n > maxFaultPoints {
			return "", fmt.Errorf("%s: still reaching fault points after %d: the sweep does not end", kind.name, maxFaultPoints)
		}
		t.points += n - 1
		t.perKind = append(t.perKind, fmt.Sprintf("%s %d", kind.name, n-1))
	}
	if len(fails) > 0 {
		if len(fails) > maxErrors {
			fails = append(fails[:maxErrors], fmt.Sprintf("... %d more", len(fails)-maxErrors))
		}
		return "", errors.New(strings.Join(fails, "; "))
	}
	if t.points == 0 {
		return "", errors.New("no fault point was reached: fail-nth injected nothing")
	}
	var oc []string
	for _, k := range []string{"full", "partial", "error ack", "nothing"} {
		oc = append(oc, fmt.Sprintf("%s %d", k, t.outcomes[k]))
	}
	info := fmt.Sprintf("%d fault points reached (%s); outcomes: %s", t.points, strings.Join(t.perKind, ", "), strings.Join(oc, ", "))
	if note != "" {
		info += "; " + note
	}
	return info, nil
}
