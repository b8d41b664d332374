package greet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/mdlayher/netlink"
)

// DefaultTimeout is how long Greet, Exchange and Collect wait for answers
// when their context has no deadline.
const DefaultTimeout = 2 * time.Second

// Errors that Greet wraps, for errors.Is.
var (
	// ErrNoReply means no reply with the greeting's sequence number arrived.
	ErrNoReply = errors.New("no reply")
	// ErrNoAck means no NLMSG_ERROR with the greeting's sequence number arrived.
	ErrNoAck = errors.New("no ack")
	// ErrBadReply means a reply arrived but is wrong: its text, or more than one.
	ErrBadReply = errors.New("bad reply")
	// ErrOrder means the ack arrived before the reply.
	ErrOrder = errors.New("ack before reply")
)

// An AckError is a message answered by NLMSG_ERROR with a non-zero error.
// It unwraps to the error number, so errors.Is(err, syscall.EINVAL) works.
type AckError struct {
	Seq   uint32
	Errno syscall.Errno
}

// Error implements error.
func (e *AckError) Error() string {
	return fmt.Sprintf("seq %d answered with NLMSG_ERROR -%s (%v)", e.Seq, ErrnoName(e.Errno), e.Errno)
}

// Unwrap returns the error number.
func (e *AckError) Unwrap() error { return e.Errno }

// A Client sends greetings over a netlink socket. A Client is not safe for
// concurrent use: open one per goroutine.
type Client struct {
	conn *netlink.Conn
}

// Dial opens a netlink socket of the given protocol, bound to a port the
// kernel picks unless cfg says otherwise. cfg may be nil.
func Dial(protocol int, cfg *netlink.Config) (*Client, error) {
	c, err := netlink.Dial(protocol, cfg)
	if err != nil {
		return nil, fmt.Errorf("dial netlink protocol %d: %w", protocol, err)
	}
	return &Client{conn: c}, nil
}

// NewClient returns a Client that uses c, for instance a connection from
// github.com/mdlayher/netlink/nltest.
func NewClient(c *netlink.Conn) *Client {
	return &Client{conn: c}
}

// Conn returns the underlying connection.
func (c *Client) Conn() *netlink.Conn { return c.conn }

// PID returns the client's netlink port, the number replies name.
func (c *Client) PID() uint32 { return c.conn.PID() }

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// A Result records one exchange.
type Result struct {
	// Request is the message as sent, with length, sequence and PID filled in.
	Request netlink.Message
	// Messages holds everything received, in order. An NLMSG_ERROR with a
	// non-zero error appears with the 4-byte error code only: the netlink
	// package does not return the echoed request of an error.
	Messages []netlink.Message
	// Reply is the first message of type TypeGreet with the request's
	// sequence number, or nil.
	Reply *netlink.Message
	// Ack is the first NLMSG_ERROR with the request's sequence number, or nil.
	Ack *netlink.Message
	// AckErrno is the error the ack carries: 0 for a plain acknowledgement.
	AckErrno syscall.Errno
	// Elapsed is the time from send to the last message taken into account.
	Elapsed time.Duration
}

// Summary returns the received messages in a compact form for failure
// messages, such as "[reply seq 7, ack seq 7 error 0]".
func (r *Result) Summary() string {
	return Summarize(r.Messages)
}

// Summarize returns msgs in a compact form for failure messages, such as
// "[reply seq 7, ack seq 7 error 0]", or "nothing" for no messages.
func Summarize(msgs []netlink.Message) string {
	if len(msgs) == 0 {
		return "nothing"
	}
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		parts = append(parts, DescribeMessage(m))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// DescribeMessage returns m in a compact form such as "reply seq 7",
// "ack seq 7 error 0" or "ack seq 7 error -EINVAL" (see DescribeAnswer).
func DescribeMessage(m netlink.Message) string {
	return DescribeAnswer(uint16(m.Header.Type), m.Header.Sequence, m.Data, 0)
}

// DescribeAnswer returns an answer of the module in the compact form
// tests compare: "reply seq 7", "ack seq 7 error 0", "ack seq 7 error
// -EINVAL" or "type 5 seq 7". When port is not 0, a reply whose text is
// not the one for that port, or not NUL-terminated, says so.
func DescribeAnswer(typ uint16, seq uint32, data []byte, port uint32) string {
	switch typ {
	case TypeGreet:
		d := fmt.Sprintf("reply seq %d", seq)
		if port == 0 {
			return d
		}
		text, err := DecodeReply(data)
		if err != nil {
			return d + fmt.Sprintf(" text %q (not NUL-terminated)", Truncate(text, 80))
		}
		if text != ReplyText(port) {
			return d + fmt.Sprintf(" text %q (want %q)", Truncate(text, 80), ReplyText(port))
		}
		return d
	case uint16(netlink.Error):
		if len(data) < 4 {
			return fmt.Sprintf("ack seq %d with a %d-byte payload", seq, len(data))
		}
		errno, err := DecodeAck(data)
		switch {
		case err != nil:
			return fmt.Sprintf("ack seq %d error +%d", seq, int32(binary.NativeEndian.Uint32(data)))
		case errno == 0:
			return fmt.Sprintf("ack seq %d error 0", seq)
		}
		return fmt.Sprintf("ack seq %d error -%s", seq, ErrnoName(errno))
	}
	return fmt.Sprintf("type %d seq %d", typ, seq)
}

// Greet sends text as a greeting with the given flags and, if flags hold
// netlink.Acknowledge, receives until the reply and the ack for its sequence
// number arrived or ctx's deadline (DefaultTimeout without one) passed.
//
// The error names what is wrong or missing, for instance
// "no ack for seq 7 within 2s"; it wraps ErrNoReply, ErrNoAck, ErrBadReply,
// ErrOrder or an *AckError. The Result is never nil once the greeting was
// sent, so callers can inspect what did arrive.
//
// Without netlink.Acknowledge nothing is expected: Greet returns after
// sending, and Collect shows whether anything arrived anyway.
func (c *Client) Greet(ctx context.Context, text string, flags netlink.HeaderFlags) (*Result, error) {
	res, err := c.Exchange(ctx, netlink.Message{
		Header: netlink.Header{Type: TypeGreet, Flags: flags},
		Data:   EncodeGreeting(text),
	})
	if err != nil || flags&netlink.Acknowledge == 0 {
		return res, err
	}
	return res, CheckGreeting(res, c.PID())
}

// CheckGreeting checks the answers to a greeting sent with NLM_F_ACK from
// port pid: exactly one reply with the greeting's sequence number and the
// text ReplyText(pid), and the ack after it.
func CheckGreeting(res *Result, pid uint32) error {
	seq := res.Request.Header.Sequence
	var replies, ackAt, replyAt int
	ackAt, replyAt = -1, -1
	for i, m := range res.Messages {
		if m.Header.Sequence != seq {
			continue
		}
		switch m.Header.Type {
		case TypeGreet:
			replies++
			if replyAt < 0 {
				replyAt = i
			}
		case netlink.Error:
			if ackAt < 0 {
				ackAt = i
			}
		}
	}
	switch {
	case res.Reply == nil:
		return fmt.Errorf("%w for seq %d before the ack (got %s)", ErrNoReply, seq, res.Summary())
	case replies > 1:
		return fmt.Errorf("%w: want 1 reply for seq %d, got %d (%s)", ErrBadReply, seq, replies, res.Summary())
	case ackAt < replyAt:
		return fmt.Errorf("%w: seq %d: got %s", ErrOrder, seq, res.Summary())
	}
	text, err := DecodeReply(res.Reply.Data)
	if err != nil {
		return fmt.Errorf("%w for seq %d: %w", ErrBadReply, seq, err)
	}
	if want := ReplyText(pid); text != want {
		return fmt.Errorf("%w for seq %d: want text %q, got %q", ErrBadReply, seq, want, text)
	}
	// The rest of each answer, field by field (the netlink package hands
	// over an NLMSG_ERROR whole only when its error is 0).
	if err := CheckAnswer(rawMessage(*res.Reply), ExpectedReply(seq, pid)); err != nil {
		return fmt.Errorf("%w for seq %d: %w", ErrBadReply, seq, err)
	}
	if res.Ack != nil && res.AckErrno == 0 {
		if err := CheckAnswer(rawMessage(*res.Ack), ExpectedAck(rawMessage(res.Request), pid, 0)); err != nil {
			return fmt.Errorf("%w for seq %d: %w", ErrBadReply, seq, err)
		}
	}
	return nil
}

// rawMessage converts a message of the netlink package to rawnl's, which
// CheckAnswer compares.
func rawMessage(m netlink.Message) rawnl.Message {
	return rawnl.Message{
		Header: rawnl.Header{Len: m.Header.Length, Type: uint16(m.Header.Type), Flags: uint16(m.Header.Flags), Seq: m.Header.Sequence, PID: m.Header.PID},
		Data:   m.Data,
	}
}

// Exchange sends m, filling in its length, sequence number and PID when
// they are zero. If m asks for an acknowledgement it then receives until
// the NLMSG_ERROR answering m's sequence number arrived or ctx's deadline
// (DefaultTimeout without one) passed. Replies of type TypeGreet with m's
// sequence number that arrive before it are kept in the Result.
//
// An ack with a non-zero error gives an *AckError; a missing one wraps
// ErrNoAck (and ErrNoReply for a greeting without its reply).
func (c *Client) Exchange(ctx context.Context, m netlink.Message) (*Result, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	req, err := c.conn.Send(m)
	if err != nil {
		return nil, fmt.Errorf("send type %d: %w", m.Header.Type, err)
	}
	res := &Result{Request: req}
	if req.Header.Flags&netlink.Acknowledge == 0 {
		return res, nil
	}

	start := time.Now()
	seq := req.Header.Sequence
	err = c.receive(ctx, func(msg netlink.Message) bool {
		res.Messages = append(res.Messages, msg)
		res.Elapsed = time.Since(start)
		return msg.Header.Sequence != seq || msg.Header.Type != netlink.Error
	})
	for i := range res.Messages {
		msg := &res.Messages[i]
		if msg.Header.Sequence != seq {
			continue
		}
		switch {
		case msg.Header.Type == TypeGreet && res.Reply == nil:
			res.Reply = msg
		case msg.Header.Type == netlink.Error && res.Ack == nil:
			res.Ack = msg
			res.AckErrno, _ = DecodeAck(msg.Data)
		}
	}

	if err != nil {
		return res, fmt.Errorf("seq %d: %w", seq, err)
	}
	if res.Ack == nil {
		var missing error = ErrNoAck
		if m.Header.Type == TypeGreet && res.Reply == nil {
			missing = fmt.Errorf("%w and %w", ErrNoReply, ErrNoAck)
		}
		return res, fmt.Errorf("%w for seq %d within %s (got %s)", missing, seq, waited(ctx, start), res.Summary())
	}
	if res.AckErrno != 0 {
		return res, &AckError{Seq: seq, Errno: res.AckErrno}
	}
	return res, nil
}

// Collect receives until ctx's deadline (DefaultTimeout without one) and
// returns everything that arrived. It is how a caller checks that nothing
// answers a message.
func (c *Client) Collect(ctx context.Context) ([]netlink.Message, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var msgs []netlink.Message
	err := c.receive(ctx, func(m netlink.Message) bool {
		msgs = append(msgs, m)
		return true
	})
	return msgs, err
}

// receive passes received messages to fn until fn returns false or ctx is
// done. Running out of time is not an error; socket errors are.
func (c *Client) receive(ctx context.Context, fn func(netlink.Message) bool) error {
	deadline, _ := ctx.Deadline()
	// Conns without deadline support (nltest) return whatever they have.
	_ = c.conn.SetReadDeadline(deadline)
	defer c.conn.SetReadDeadline(time.Time{})
	unwake := context.AfterFunc(ctx, func() {
		// Wake a blocked receive when ctx is cancelled early.
		_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer unwake()

	for ctx.Err() == nil {
		stop, err := c.receivePass(fn)
		if errors.Is(err, errTimedOut) {
			break
		}
		if stop || err != nil {
			return err
		}
	}

	// The kernel answers inside the sender's send call, so whatever was
	// asked for is queued by now. A guest whose vCPU was starved past the
	// deadline (TCG on a busy host) may not have read it yet: one short
	// last pass takes what is there before the caller hears "nothing".
	// The deadline is set just before each read, and one read always
	// happens: a goroutine stalled past a deadline set earlier would
	// otherwise time out without reading at all (Go's poller checks the
	// deadline before the system call).
	unwake()
	end := time.Now().Add(lastPass)
	for first := true; first || time.Now().Before(end); first = false {
		_ = c.conn.SetReadDeadline(time.Now().Add(lastPass))
		stop, err := c.receivePass(fn)
		if errors.Is(err, errTimedOut) {
			return nil
		}
		if stop || err != nil {
			return err
		}
	}
	return nil
}

// lastPass is how long the final read after a deadline may wait. It
// costs nothing when the answer is queued, and is long enough that a
// goroutine preempted between setting the deadline and reading (16
// busy goroutines on one starved TCG vCPU: hundreds of milliseconds)
// still reads before the poller declares the deadline passed. Only a
// missing answer waits it out.
const lastPass = time.Second

// errTimedOut ends a receivePass at the read deadline.
var errTimedOut = errors.New("read deadline reached")

// receivePass feeds fn what the socket has until fn says stop (stop is
// true), the read deadline passes (errTimedOut) or the socket fails.
func (c *Client) receivePass(fn func(netlink.Message) bool) (stop bool, err error) {
	for m, err := range c.conn.ReceiveIter() {
		if err != nil {
			if msg, ok := errorMessage(err); ok {
				if !fn(msg) {
					return true, nil
				}
				continue
			}
			if isTimeout(err) {
				return false, errTimedOut
			}
			return true, fmt.Errorf("receive: %w", err)
		}
		if !fn(m) {
			return true, nil
		}
	}
	return false, nil
}

// errorMessage turns the error the netlink package makes of an NLMSG_ERROR
// with a non-zero code back into a message.
func errorMessage(err error) (netlink.Message, bool) {
	var oe *netlink.OpError
	if !errors.As(err, &oe) {
		return netlink.Message{}, false
	}
	var se *os.SyscallError
	if errors.As(oe.Err, &se) {
		return netlink.Message{}, false
	}
	var errno syscall.Errno
	if !errors.As(oe.Err, &errno) {
		return netlink.Message{}, false
	}
	return netlink.Message{
		Header: netlink.Header{Length: HeaderLen + 4, Type: netlink.Error, Sequence: oe.Sequence},
		Data:   EncodeAck(errno),
	}, true
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// waited returns the time Exchange waited, rounded for messages ("2s").
func waited(ctx context.Context, start time.Time) time.Duration {
	d := time.Since(start)
	// The deadline may have been set before start, even passed already:
	// then the time actually waited is the honest figure.
	if dl, ok := ctx.Deadline(); ok && dl.After(start) {
		d = dl.Sub(start)
	}
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}
