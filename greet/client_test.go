package greet_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
)

// answer builds the kernel's answers to one greeting request, byte for
// byte as the module and netlink_ack() build them.
type answer func(req netlink.Message) []netlink.Message

func reply(seqDelta uint32, text string) answer {
	return func(req netlink.Message) []netlink.Message {
		data := greet.EncodeGreeting(text)
		return []netlink.Message{{
			Header: netlink.Header{Length: uint32(greet.HeaderLen + len(data)), Type: greet.TypeGreet, Sequence: req.Header.Sequence + seqDelta},
			Data:   data,
		}}
	}
}

func ack(seqDelta uint32, errno syscall.Errno) answer {
	return func(req netlink.Message) []netlink.Message {
		b, _ := req.MarshalBinary()
		var flags netlink.HeaderFlags
		if errno == 0 {
			b, flags = b[:greet.HeaderLen], greet.FlagCapped
		}
		data := append(greet.EncodeAck(errno), b...)
		return []netlink.Message{{
			Header: netlink.Header{Length: uint32(greet.HeaderLen + len(data)), Type: netlink.Error, Flags: flags,
				Sequence: req.Header.Sequence + seqDelta, PID: nltest.PID},
			Data: data,
		}}
	}
}

// fake returns an nltest Func that answers a greeting with answers, and
// then behaves like a socket whose read deadline passes.
func fake(t *testing.T, answers ...answer) nltest.Func {
	t.Helper()
	return nltest.CheckRequest(
		[]netlink.HeaderType{greet.TypeGreet},
		[]netlink.HeaderFlags{netlink.Request | netlink.Acknowledge},
		func(reqs []netlink.Message) ([]netlink.Message, error) {
			var out []netlink.Message
			for _, a := range answers {
				out = append(out, a(reqs[0])...)
			}
			return out, nil
		})
}

func dialFake(t *testing.T, fn nltest.Func) *greet.Client {
	t.Helper()
	c := greet.NewClient(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if reqs == nil {
			// A receive with nothing pending: the deadline passes.
			return nil, os.ErrDeadlineExceeded
		}
		return fn(reqs)
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGreet(t *testing.T) {
	good := greet.ReplyText(nltest.PID)
	tests := []struct {
		name    string
		answers []answer
		// want is DescribeMessage of each received message with seq replaced by
		// an offset from the request's ("reply +0").
		want    []string
		wantErr error
		wantMsg string
	}{
		{
			name:    "reply and ack",
			answers: []answer{reply(0, good), ack(0, 0)},
			want:    []string{"reply seq +0", "ack seq +0 error 0"},
		},
		{
			name:    "missing ack",
			answers: []answer{reply(0, good)},
			want:    []string{"reply seq +0"},
			wantErr: greet.ErrNoAck,
			wantMsg: "no ack for seq",
		},
		{
			name:    "nothing",
			wantErr: greet.ErrNoReply,
			wantMsg: "no reply and no ack for seq",
		},
		{
			name:    "wrong seq",
			answers: []answer{reply(1, good), ack(1, 0)},
			want:    []string{"reply seq +1", "ack seq +1 error 0"},
			wantErr: greet.ErrNoAck,
			wantMsg: "got [reply seq",
		},
		{
			name:    "ack before reply",
			answers: []answer{ack(0, 0), reply(0, good)},
			want:    []string{"ack seq +0 error 0"},
			wantErr: greet.ErrNoReply,
			wantMsg: "no reply for seq",
		},
		{
			name:    "error ack",
			answers: []answer{ack(0, syscall.EINVAL)},
			want:    []string{"ack seq +0 error -EINVAL"},
			wantErr: syscall.EINVAL,
			wantMsg: "NLMSG_ERROR -EINVAL",
		},
		{
			name:    "wrong text",
			answers: []answer{reply(0, greet.ReplyText(99)), ack(0, 0)},
			want:    []string{"reply seq +0", "ack seq +0 error 0"},
			wantErr: greet.ErrBadReply,
			wantMsg: `got "Msg from Process 99`,
		},
		{
			name:    "two replies",
			answers: []answer{reply(0, good), reply(0, good), ack(0, 0)},
			want:    []string{"reply seq +0", "reply seq +0", "ack seq +0 error 0"},
			wantErr: greet.ErrBadReply,
			wantMsg: "want 1 reply",
		},
		{
			name:    "stray message first",
			answers: []answer{reply(5, good), reply(0, good), ack(0, 0)},
			want:    []string{"reply seq +5", "reply seq +0", "ack seq +0 error 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFake(t, fake(t, tt.answers...))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()

			res, err := c.Greet(ctx, "hello", netlink.Request|netlink.Acknowledge)
			if res == nil {
				t.Fatalf("Greet returned no result, err %v", err)
			}
			if diff := cmp.Diff(tt.want, relative(res)); diff != "" {
				t.Errorf("unexpected messages (-want +got):\n%s", diff)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("unexpected error:\n- want: %v\n-  got: %v", tt.wantErr, err)
			case tt.wantErr != nil && !strings.Contains(err.Error(), tt.wantMsg):
				t.Fatalf("error %q does not contain %q", err, tt.wantMsg)
			}
			if err == nil {
				text, derr := greet.DecodeReply(res.Reply.Data)
				if derr != nil || text != good {
					t.Fatalf("reply text: want %q, got %q (%v)", good, text, derr)
				}
			}
		})
	}
}

// relative describes res.Messages with sequence numbers relative to the
// request's.
func relative(res *greet.Result) []string {
	var out []string
	for _, m := range res.Messages {
		m.Header.Sequence -= res.Request.Header.Sequence
		out = append(out, strings.Replace(greet.DescribeMessage(m), "seq ", "seq +", 1))
	}
	return out
}

func TestGreetWithoutAck(t *testing.T) {
	c := dialFake(t, nltest.CheckRequest(
		[]netlink.HeaderType{greet.TypeGreet},
		[]netlink.HeaderFlags{netlink.Request},
		func(reqs []netlink.Message) ([]netlink.Message, error) {
			return nil, os.ErrDeadlineExceeded
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := c.Greet(ctx, "hello", netlink.Request)
	if err != nil {
		t.Fatalf("Greet: %v", err)
	}
	if len(res.Messages) != 0 {
		t.Fatalf("Greet without ack received %s", res.Summary())
	}
	msgs, err := c.Collect(ctx)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("want nothing, got %s", greet.Summarize(msgs))
	}
}

func TestGreetMissingAckMessage(t *testing.T) {
	c := dialFake(t, fake(t, reply(0, greet.ReplyText(nltest.PID))))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.Greet(ctx, "hello", netlink.Request|netlink.Acknowledge)
	want := "no ack for seq " + strconv.FormatUint(uint64(res.Request.Header.Sequence), 10) + " within 2s"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("unexpected error:\n- want: %s...\n-  got: %v", want, err)
	}
}
