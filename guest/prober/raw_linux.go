package main

import (
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

// rawReadBuffer is the receive buffer of raw sockets: large enough that
// nothing the steps provoke is dropped legitimately.
const rawReadBuffer = 4 << 20

// A rawSession is a raw netlink socket with its own sequence numbers.
type rawSession struct {
	c   *rawnl.Conn
	seq uint32
}

// rawSession opens a raw socket of the module's protocol.
func (p *prober) rawSession() (*rawSession, error) {
	if err := p.requireModule(); err != nil {
		return nil, err
	}
	c, err := rawnl.Dial(p.cfg.Protocol)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadBuffer(rawReadBuffer); err != nil {
		c.Close()
		return nil, err
	}
	return &rawSession{c: c, seq: 100}, nil
}

func (s *rawSession) Close() error { return s.c.Close() }

// next returns a fresh sequence number.
func (s *rawSession) next() uint32 {
	s.seq++
	return s.seq
}

// message builds one message with a fresh sequence number.
func (s *rawSession) message(typ, flags uint16, payload []byte) (uint32, []byte) {
	seq := s.next()
	return seq, rawnl.NewMessage(rawnl.Header{Type: typ, Flags: flags, Seq: seq}, payload)
}

// describeRaw returns m in the compact form steps compare (see
// greet.DescribeAnswer); a reply with the wrong text for port says so.
func describeRaw(m rawnl.Message, port uint32) string {
	return greet.DescribeAnswer(m.Header.Type, m.Header.Seq, m.Data, port)
}

// waitAck receives until an NLMSG_ERROR with seq arrives or timeout
// passes, and describes everything received.
func (s *rawSession) waitAck(seq uint32, timeout time.Duration) ([]string, error) {
	var got []string
	end := time.Now().Add(timeout)
	for {
		msgs, err := s.c.ReceiveMessages(time.Until(end))
		for _, m := range msgs {
			got = append(got, describeRaw(m, s.c.PID()))
			if m.Header.Type == rawnl.TypeError && m.Header.Seq == seq {
				if err != nil {
					return got, fmt.Errorf("malformed datagram: %w", err)
				}
				return got, nil
			}
		}
		switch {
		case errors.Is(err, rawnl.ErrTimeout):
			return got, fmt.Errorf("no ack for seq %d within %s", seq, timeout)
		case err != nil:
			return got, err
		}
	}
}

// exchange sends each datagram, then a sentinel greeting with NLM_F_ACK,
// and returns the descriptions of everything that arrived before the
// sentinel's answers. An error means the sentinel was not answered
// properly: the module stopped answering.
func (s *rawSession) exchange(datagrams ...[]byte) ([]string, error) {
	for i, d := range datagrams {
		err := s.c.Send(d)
		// The socket layer itself refuses an empty datagram (ENODATA
		// since "Zero length message leads to an empty skb"); it never
		// reaches the module, which is what the step wants.
		if len(d) == 0 && errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("datagram %d: %w", i, err)
		}
	}
	seq, sentinel := s.message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting("sentinel"))
	if err := s.c.Send(sentinel); err != nil {
		return nil, fmt.Errorf("sentinel greeting: %w", err)
	}
	got, err := s.waitAck(seq, answerTimeout)
	tail := []string{fmt.Sprintf("reply seq %d", seq), fmt.Sprintf("ack seq %d error 0", seq)}
	if err != nil {
		return got, fmt.Errorf("module stopped answering: sentinel greeting seq %d: want %v, got %v: %v", seq, tail, got, err)
	}
	if len(got) < 2 || !equal(got[len(got)-2:], tail) {
		return got, fmt.Errorf("sentinel greeting seq %d: want %v at the end, got %v", seq, tail, got)
	}
	return got[:len(got)-2], nil
}

// A rawCase is one input and the answers it must get.
type rawCase struct {
	name string
	// build returns the datagrams to send and the answers they must get.
	build func(s *rawSession) (datagrams [][]byte, want []string)
}

// runRawCases runs each case on one socket and fails with every mismatch.
func (p *prober) runRawCases(cases []rawCase) (string, error) {
	s, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var fails []error
	for _, c := range cases {
		datagrams, want := c.build(s)
		got, err := s.exchange(datagrams...)
		if err != nil {
			fails = append(fails, fmt.Errorf("%s: %w", c.name, err))
			break
		}
		if !equal(want, got) {
			fails = append(fails, fmt.Errorf("%s: want %s, got %s", c.name, list(want), list(got)))
		}
	}
	if len(fails) > 0 {
		return "", errors.Join(fails...)
	}
	return fmt.Sprintf("%d cases", len(cases)), nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%q", s)
}

// Expected answers, in describe's form.
func replyAck(seq uint32) []string {
	return []string{fmt.Sprintf("reply seq %d", seq), fmt.Sprintf("ack seq %d error 0", seq)}
}

func ackOnly(seq uint32) []string { return []string{fmt.Sprintf("ack seq %d error 0", seq)} }

func errAck(seq uint32, name string) []string {
	return []string{fmt.Sprintf("ack seq %d error -%s", seq, name)}
}
