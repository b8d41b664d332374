package rawnl_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

func TestParse(t *testing.T) {
	two := rawnl.AppendMessage(nil, rawnl.Header{Type: 20, Flags: rawnl.FlagAck, Seq: 1, PID: 7}, []byte("hi\x00"))
	two = rawnl.AppendMessage(two, rawnl.Header{Type: rawnl.TypeError, Seq: 2}, []byte{0, 0, 0, 0})
	unpadded := rawnl.NewMessage(rawnl.Header{Type: 20, Seq: 3}, []byte("hello"))[:21]
	lying := rawnl.NewMessage(rawnl.Header{Len: 100, Type: 20}, []byte("x"))
	short := rawnl.NewMessage(rawnl.Header{Len: 15, Type: 20}, nil)
	huge := rawnl.NewMessage(rawnl.Header{Len: 0xffffffff, Type: 20}, nil)

	tests := []struct {
		name    string
		b       []byte
		want    []rawnl.Message
		wantErr error
	}{
		{name: "empty"},
		{
			name: "two messages",
			b:    two,
			want: []rawnl.Message{
				{Header: rawnl.Header{Len: 19, Type: 20, Flags: rawnl.FlagAck, Seq: 1, PID: 7}, Data: []byte("hi\x00")},
				{Header: rawnl.Header{Len: 20, Type: rawnl.TypeError, Seq: 2}, Data: []byte{0, 0, 0, 0}},
			},
		},
		{
			name: "unpadded last message",
			b:    unpadded,
			want: []rawnl.Message{{Header: rawnl.Header{Len: 21, Type: 20, Seq: 3}, Data: []byte("hello")}},
		},
		{name: "short header", b: two[:10], wantErr: rawnl.ErrShortHeader},
		{
			name:    "trailing bytes",
			b:       append(append([]byte(nil), two[:20]...), 1, 2, 3, 4),
			want:    []rawnl.Message{{Header: rawnl.Header{Len: 19, Type: 20, Flags: rawnl.FlagAck, Seq: 1, PID: 7}, Data: []byte("hi\x00")}},
			wantErr: rawnl.ErrShortHeader,
		},
		{name: "length beyond datagram", b: lying, wantErr: rawnl.ErrBadLength},
		{name: "length below header", b: short, wantErr: rawnl.ErrBadLength},
		{name: "length overflows", b: huge, wantErr: rawnl.ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rawnl.Parse(tt.b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("unexpected error:\n- want: %v\n-  got: %v", tt.wantErr, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrno(t *testing.T) {
	msgs, err := rawnl.Parse(rawnl.NewMessage(rawnl.Header{Type: rawnl.TypeError, Seq: 9}, []byte{0xea, 0xff, 0xff, 0xff}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	errno, ok := msgs[0].Errno()
	if !ok || errno != 22 {
		t.Fatalf("Errno: want 22 true, got %d %v", errno, ok)
	}
	if _, ok := (rawnl.Message{Header: rawnl.Header{Type: rawnl.TypeError}, Data: []byte{1}}).Errno(); ok {
		t.Fatal("Errno accepted a 1-byte NLMSG_ERROR payload")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(rawnl.NewMessage(rawnl.Header{Type: 20}, []byte("hi")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := rawnl.Parse(b)
		for _, m := range msgs {
			if int(m.Header.Len) != rawnl.HeaderLen+len(m.Data) {
				t.Fatalf("message length %d but %d bytes of data", m.Header.Len, len(m.Data))
			}
		}
	})
}
