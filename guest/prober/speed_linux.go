package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/kmodtest/kmodtest/guest/rawgreet"
	"golang.org/x/sys/unix"
)

// kernelReference names the round trip the kernel serves itself, which
// the module's is compared with: one datagram of two NLMSG_NOOP with
// NLM_F_ACK to rtnetlink. Like a greeting with NLM_F_ACK it is one
// sendmsg that the kernel answers synchronously with two datagrams read
// by two recvmsg, through the same netlink_unicast_kernel and
// netlink_rcv_skb and netlink_ack; unlike RTM_GETLINK it takes no rtnl
// lock and reads no device state, so other work in the guest does not
// change it.
const kernelReference = "rtnetlink: 2 NLMSG_NOOP with NLM_F_ACK in one datagram"

// stepRoundTrip times greetings with NLM_F_ACK, one at a time on one raw
// socket, next to as many of the kernel's own round trips on an
// rtnetlink socket, alternating, so that both see the same load. Every
// answer is checked whole. It fails when the module's median is more
// than contract.RoundTripFactor times the kernel's.
func stepRoundTrip(ctx context.Context, p *prober) (string, error) {
	mod, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer mod.Close()
	kern, err := rawgreet.Open(unix.NETLINK_ROUTE, answerTimeout)
	if err != nil {
		return "", fmt.Errorf("rtnetlink socket: %w", err)
	}
	defer kern.Close()

	var modTimes, kernTimes []time.Duration
	for i := range contract.RoundTripWarmup + contract.RoundTripCount {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("after %d of %d round trips: %w", i, contract.RoundTripWarmup+contract.RoundTripCount, err)
		}
		m, err := moduleRoundTrip(mod)
		if err != nil {
			return "", fmt.Errorf("greeting %d: %w", i+1, err)
		}
		k, err := kernelRoundTrip(kern)
		if err != nil {
			return "", fmt.Errorf("kernel round trip %d (%s): %w", i+1, kernelReference, err)
		}
		if i >= contract.RoundTripWarmup {
			modTimes = append(modTimes, m)
			kernTimes = append(kernTimes, k)
		}
	}
	rt := &contract.RoundTrips{
		Count:     contract.RoundTripCount,
		Module:    contract.NewLatency(modTimes),
		Kernel:    contract.NewLatency(kernTimes),
		Reference: kernelReference,
	}
	p.roundTrips = rt
	if rt.TooSlow() {
		return "", fmt.Errorf("the module's median round trip is %.1f times the kernel's, more than %d times: %s",
			rt.Ratio(), contract.RoundTripFactor, rt)
	}
	return rt.String(), nil
}

// moduleRoundTrip sends one greeting with NLM_F_ACK and returns the time
// until its ack arrived; the reply and the ack must be exactly those the
// protocol promises, in that order.
func moduleRoundTrip(s *rawgreet.Session) (time.Duration, error) {
	seq, msg := s.Message(greet.TypeGreet, rawgreet.ReqAck, greet.EncodeGreeting(greetingText))
	req, err := rawnl.Parse(msg)
	if err != nil {
		return 0, err
	}
	port := s.Conn.PID()
	want := []rawnl.Message{greet.ExpectedReply(seq, port), greet.ExpectedAck(req[0], port, 0)}
	start := time.Now()
	if err := s.Conn.Send(msg); err != nil {
		return 0, err
	}
	if err := receiveExactly(s.Conn, want); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// kernelRoundTrip sends two NLMSG_NOOP with NLM_F_ACK in one datagram
// to rtnetlink and returns the time until the second ack arrived.
func kernelRoundTrip(s *rawgreet.Session) (time.Duration, error) {
	var d []byte
	var want []rawnl.Message
	port := s.Conn.PID()
	for range 2 {
		h := rawnl.Header{Type: rawnl.TypeNoop, Flags: rawgreet.ReqAck, Seq: s.Next()}
		d = rawnl.AppendMessage(d, h, nil)
		want = append(want, greet.ExpectedAck(rawnl.Message{Header: rawnl.Header{Len: rawnl.HeaderLen, Type: h.Type, Flags: h.Flags, Seq: h.Seq}}, port, 0))
	}
	start := time.Now()
	if err := s.Conn.Send(d); err != nil {
		return 0, err
	}
	if err := receiveExactly(s.Conn, want); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// receiveExactly receives one message per datagram until it has as many
// as want, each checked whole against its counterpart.
func receiveExactly(c *rawnl.Conn, want []rawnl.Message) error {
	for i, w := range want {
		msgs, err := c.ReceiveMessages(answerTimeout)
		if err != nil {
			return fmt.Errorf("answer %d of %d (seq %d): %w", i+1, len(want), w.Header.Seq, err)
		}
		if len(msgs) != 1 {
			return fmt.Errorf("answer %d of %d (seq %d): a datagram of %d messages, want 1", i+1, len(want), w.Header.Seq, len(msgs))
		}
		if err := greet.CheckAnswer(msgs[0], w); err != nil {
			return fmt.Errorf("answer %d of %d (seq %d): %w", i+1, len(want), w.Header.Seq, err)
		}
	}
	return nil
}
