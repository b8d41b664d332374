package greet_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet"
)

func TestReplyText(t *testing.T) {
	if diff := cmp.Diff("Msg from Process 4242 has been processed by kernel", greet.ReplyText(4242)); diff != "" {
		t.Fatalf("unexpected reply text (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("Msg from Process 4294967295 has been processed by kernel", greet.ReplyText(1<<32-1)); diff != "" {
		t.Fatalf("unexpected reply text for a negative autobind port (-want +got):\n%s", diff)
	}
}

func TestEncodeOriginalGreeting(t *testing.T) {
	b := greet.EncodeOriginalGreeting("Hello")
	if len(b) != greet.OriginalPayloadLen {
		t.Fatalf("payload length: want %d, got %d", greet.OriginalPayloadLen, len(b))
	}
	if got := string(greet.GreetingText(b)); got != "Hello" {
		t.Fatalf("greeting text: want %q, got %q", "Hello", got)
	}
	long := greet.EncodeOriginalGreeting(string(bytesOf('a', 2000)))
	if long[len(long)-1] != 0 {
		t.Fatal("a cut text is not NUL-terminated")
	}
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestGreetingText(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{name: "terminated", payload: []byte("hi\x00junk"), want: "hi"},
		{name: "no NUL", payload: []byte("hello"), want: "hello"},
		{name: "empty", payload: nil, want: ""},
		{name: "leading NUL", payload: []byte("\x00hi"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(greet.GreetingText(tt.payload))); diff != "" {
				t.Fatalf("unexpected text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    string
		wantErr error
	}{
		{name: "terminated", payload: []byte("ok\x00"), want: "ok"},
		{name: "padded", payload: []byte("ok\x00\x00\x00\x00"), want: "ok"},
		{name: "unterminated", payload: []byte("ok"), want: "ok", wantErr: greet.ErrNotTerminated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := greet.DecodeReply(tt.payload)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("unexpected error:\n- want: %v\n-  got: %v", tt.wantErr, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeAck(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    syscall.Errno
		wantErr bool
	}{
		{name: "ack", payload: greet.EncodeAck(0), want: 0},
		{name: "EINVAL", payload: greet.EncodeAck(syscall.EINVAL), want: syscall.EINVAL},
		{name: "with request", payload: append(greet.EncodeAck(syscall.EOPNOTSUPP), make([]byte, 16)...), want: syscall.EOPNOTSUPP},
		{name: "short", payload: []byte{0, 0}, wantErr: true},
		{name: "positive", payload: []byte{1, 0, 0, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := greet.DecodeAck(tt.payload)
			if (err != nil) != tt.wantErr {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("errno: want %v, got %v", tt.want, got)
			}
		})
	}
}

// TestLogEscape pins LogEscape to the rules of string_escape_mem in
// lib/string_helpers.c; the greeting-log step checks it against the lines
// real kernels print.
func TestLogEscape(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"Hello from kmodtest", "Hello from kmodtest"},
		{"tab\there\nnl\r\v\f", `tab\there\nnl\r\v\f`},
		{"\a\x1b\x00", `\a\e\0`},
		{"\x01\x7f\x80\x9f", `\001\177\200\237`},
		// Backslash and quote are printable; so is Latin-1 0xa0-0xff.
		{`back\slash "q"`, `back\slash "q"`},
		{"caf\xc3\xa9 \xa0\xff", "caf\xc3\xa9 \xa0\xff"},
		// U+0085 in UTF-8 is c2 85: 0x85 is a C1 control.
		{"\xc2\x85", `` + "\xc2" + `\205`},
	} {
		if got := string(greet.LogEscape([]byte(tc.in))); got != tc.want {
			t.Errorf("LogEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
