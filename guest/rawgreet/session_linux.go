package rawgreet

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"golang.org/x/sys/unix"
)

// rawReadBuffer is the receive buffer of raw sockets: large enough that
// nothing the steps provoke is dropped legitimately.
const rawReadBuffer = 4 << 20

// A Session is a raw netlink socket with its own sequence numbers.
type Session struct {
	Conn *rawnl.Conn
	// Timeout bounds the wait for an answer that must come.
	Timeout time.Duration
	// QuietSentinel makes Exchange end with an NLMSG_NOOP with NLM_F_ACK
	// instead of a greeting: a sentinel that logs no greeting line, for
	// steps that check the log holds none.
	QuietSentinel bool
	seq           uint32
	// sent holds every well-formed message sent through Send, by
	// sequence number: what answers are checked against, whole.
	sent map[uint32]rawnl.Message
}

// Open opens a raw socket of the module's netlink protocol.
func Open(protocol int, timeout time.Duration) (*Session, error) {
	c, err := rawnl.Dial(protocol)
	if err != nil {
		return nil, err
	}
	if err := c.SetReadBuffer(rawReadBuffer); err != nil {
		c.Close()
		return nil, err
	}
	return &Session{Conn: c, Timeout: timeout, seq: 100, sent: map[uint32]rawnl.Message{}}, nil
}

// Close closes the socket.
func (s *Session) Close() error { return s.Conn.Close() }

// Next returns a fresh sequence number.
func (s *Session) Next() uint32 {
	s.seq++
	return s.seq
}

// Message builds one message with a fresh sequence number.
func (s *Session) Message(typ, flags uint16, payload []byte) (uint32, []byte) {
	seq := s.Next()
	return seq, rawnl.NewMessage(rawnl.Header{Type: typ, Flags: flags, Seq: seq}, payload)
}

// Send sends d as one datagram and remembers its well-formed messages,
// so that their answers can be checked whole (Check).
func (s *Session) Send(d []byte) error {
	msgs, _ := rawnl.Parse(d)
	for _, m := range msgs {
		m.Data = append([]byte(nil), m.Data...)
		s.sent[m.Header.Seq] = m
	}
	return s.Conn.Send(d)
}

// Check compares an answer with the one the protocol promises for the
// message sent with its sequence number (greet.CheckAnswer): a reply
// must be greet.ExpectedReply, an NLMSG_ERROR greet.ExpectedAck with its
// own error code (which the steps compare through Describe). Answers to
// nothing sent, or of other types, are left to Describe.
func (s *Session) Check(m rawnl.Message) error {
	req, ok := s.sent[m.Header.Seq]
	if !ok {
		return nil
	}
	switch m.Header.Type {
	case greet.TypeGreet:
		return greet.CheckAnswer(m, greet.ExpectedReply(m.Header.Seq, s.Conn.PID()))
	case rawnl.TypeError:
		errno, ok := m.Errno()
		if !ok || errno < 0 {
			return nil
		}
		return greet.CheckAnswer(m, greet.ExpectedAck(req, s.Conn.PID(), syscall.Errno(errno)))
	}
	return nil
}

// DescribeChecked is Describe followed, for an answer that differs from
// the one promised in any field, by what differs (Check).
func (s *Session) DescribeChecked(m rawnl.Message) string {
	d := Describe(m, 0)
	if err := s.Check(m); err != nil {
		d += " (" + err.Error() + ")"
	}
	return d
}

// Describe returns m in the compact form steps compare (see
// greet.DescribeAnswer); a reply with the wrong text for port says so.
func Describe(m rawnl.Message, port uint32) string {
	return greet.DescribeAnswer(m.Header.Type, m.Header.Seq, m.Data, port)
}

// WaitAck receives until an NLMSG_ERROR with seq arrives or timeout
// passes, and describes everything received.
func (s *Session) WaitAck(seq uint32, timeout time.Duration) ([]string, error) {
	var got []string
	end := time.Now().Add(timeout)
	for {
		msgs, err := s.Conn.ReceiveMessages(time.Until(end))
		for _, m := range msgs {
			got = append(got, s.DescribeChecked(m))
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

// Exchange sends each datagram, then a sentinel greeting with NLM_F_ACK,
// and returns the descriptions of everything that arrived before the
// sentinel's answers. An error means the sentinel was not answered
// properly: the module stopped answering.
func (s *Session) Exchange(datagrams ...[]byte) ([]string, error) {
	for i, d := range datagrams {
		err := s.Send(d)
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
	seq, sentinel := s.Message(greet.TypeGreet, rawnl.FlagRequest|rawnl.FlagAck, greet.EncodeGreeting("sentinel"))
	tail := ReplyAck(seq)
	what := "sentinel greeting"
	if s.QuietSentinel {
		seq, sentinel = s.Message(rawnl.TypeNoop, rawnl.FlagRequest|rawnl.FlagAck, nil)
		tail = AckOnly(seq)
		what = "sentinel NLMSG_NOOP"
	}
	if err := s.Send(sentinel); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	got, err := s.WaitAck(seq, s.Timeout)
	if err != nil {
		return got, fmt.Errorf("module stopped answering: %s seq %d: want %v, got %v: %v", what, seq, tail, got, err)
	}
	if len(got) < len(tail) || !slices.Equal(got[len(got)-len(tail):], tail) {
		return got, fmt.Errorf("%s seq %d: want %v at the end, got %v", what, seq, tail, got)
	}
	return got[:len(got)-len(tail)], nil
}

// A Case is one input and the answers it must get.
type Case struct {
	Name string
	// Build returns the datagrams to send and the answers they must get.
	Build func(s *Session) (datagrams [][]byte, want []string)
	// Invalid marks a case that sends only messages the module must not
	// log a greeting line for (invalid greetings, other types).
	Invalid bool
}

// Invalid returns cases marked Invalid.
func Invalid(cases ...Case) []Case {
	for i := range cases {
		cases[i].Invalid = true
	}
	return cases
}

// Run runs each case on s and fails with every mismatch.
func Run(s *Session, cases []Case) (string, error) {
	var fails []error
	for _, c := range cases {
		datagrams, want := c.Build(s)
		got, err := s.Exchange(datagrams...)
		if err != nil {
			fails = append(fails, fmt.Errorf("%s: %w", c.Name, err))
			break
		}
		if !slices.Equal(want, got) {
			fails = append(fails, fmt.Errorf("%s: want %s, got %s", c.Name, List(want), List(got)))
		}
	}
	if len(fails) > 0 {
		return "", errors.Join(fails...)
	}
	return fmt.Sprintf("%d cases", len(cases)), nil
}

// List quotes answers for messages, "nothing" for none.
func List(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%q", s)
}

// ReplyAck is the answer to a greeting with NLM_F_ACK, in Describe's form.
func ReplyAck(seq uint32) []string {
	return []string{fmt.Sprintf("reply seq %d", seq), fmt.Sprintf("ack seq %d error 0", seq)}
}

// AckOnly is a bare ack.
func AckOnly(seq uint32) []string { return []string{fmt.Sprintf("ack seq %d error 0", seq)} }

// ErrAck is an ack carrying the error name ("EINVAL").
func ErrAck(seq uint32, name string) []string {
	return []string{fmt.Sprintf("ack seq %d error -%s", seq, name)}
}
