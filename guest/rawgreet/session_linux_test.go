package rawgreet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

func TestDescribeRaw(t *testing.T) {
	const port = 4242
	msg := func(typ uint16, seq uint32, data []byte) rawnl.Message {
		return rawnl.Message{Header: rawnl.Header{Len: uint32(16 + len(data)), Type: typ, Seq: seq}, Data: data}
	}
	tests := []struct {
		name string
		m    rawnl.Message
		want string
	}{
		{name: "reply", m: msg(greet.TypeGreet, 7, greet.EncodeGreeting(greet.ReplyText(port))), want: "reply seq 7"},
		{name: "reply for another port", m: msg(greet.TypeGreet, 7, greet.EncodeGreeting(greet.ReplyText(1))),
			want: `reply seq 7 text "Msg from Process 1 has been processed by kernel" (want "Msg from Process 4242 has been processed by kernel")`},
		{name: "unterminated", m: msg(greet.TypeGreet, 7, []byte("x")), want: `reply seq 7 text "x" (not NUL-terminated)`},
		{name: "ack", m: msg(rawnl.TypeError, 8, greet.EncodeAck(0)), want: "ack seq 8 error 0"},
		{name: "EINVAL", m: msg(rawnl.TypeError, 9, greet.EncodeAck(22)), want: "ack seq 9 error -EINVAL"},
		{name: "short error", m: msg(rawnl.TypeError, 9, nil), want: "ack seq 9 with a 0-byte payload"},
		{name: "other", m: msg(3, 1, nil), want: "type 3 seq 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Describe(tt.m, port)); diff != "" {
				t.Fatalf("unexpected description (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBigBatch(t *testing.T) {
	cases := Batch()
	d, want := cases[len(cases)-1].Build(&Session{seq: 100})
	msgs, err := rawnl.Parse(d[0])
	if err != nil || len(msgs) != BigBatch {
		t.Fatalf("datagram holds %d messages (%v), want %d", len(msgs), err, BigBatch)
	}
	// Per ten messages: four greetings with NLM_F_ACK (reply and ack),
	// an empty greeting and another type (an error ack each), and a NOOP
	// with NLM_F_ACK (an ack); the rest are answered with nothing.
	if n := BigBatch / 10 * (4*2 + 3); len(want) != n {
		t.Fatalf("want %d answers, got %d: %q", n, len(want), want)
	}
	if want[0] != "reply seq 101" || want[len(want)-1] != "ack seq 139 error 0" {
		t.Errorf("answers from %q to %q, want from reply seq 101 to ack seq 139 error 0", want[0], want[len(want)-1])
	}
}

func TestInvalidMarksCases(t *testing.T) {
	for _, c := range EmptyGreeting() {
		if !c.Invalid {
			t.Errorf("empty greeting case %q is not marked Invalid", c.Name)
		}
	}
	var invalid []string
	for _, c := range TextLimits() {
		if c.Invalid {
			invalid = append(invalid, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"1025 bytes", "1025 bytes without NUL"}, invalid); diff != "" {
		t.Errorf("invalid text-limits cases (-want +got):\n%s", diff)
	}
}
