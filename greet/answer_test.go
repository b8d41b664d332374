package greet

import (
	"encoding/binary"
	"strings"
	"syscall"
	"testing"

	"github.com/kmodtest/kmodtest/greet/rawnl"
)

// le builds wire bytes from little-endian fields, as the tests' hosts
// (amd64, arm64) put them: the fixtures below are datagrams as the
// kernel sends them, written out by hand.
func le(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		switch v := f.(type) {
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		}
	}
	return b
}

func parseOne(t *testing.T, b []byte) rawnl.Message {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("byte fixtures are little-endian")
	}
	msgs, err := rawnl.Parse(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse fixture: %d messages, %v", len(msgs), err)
	}
	return msgs[0]
}

const port = 1234

var replyText = "Msg from Process 1234 has been processed by kernel\x00"

// A greeting "hi" with NLM_F_REQUEST|NLM_F_ACK, seq 7, nlmsg_pid 0.
var request = le(uint32(19), uint16(TypeGreet), uint16(5), uint32(7), uint32(0), "hi\x00")

func TestCheckAnswerAcceptsTheKernelsAnswers(t *testing.T) {
	req := parseOne(t, append(request, 0)) // padded as sent
	reply := parseOne(t, le(uint32(16+len(replyText)), uint16(TypeGreet), uint16(0), uint32(7), uint32(0), replyText))
	if err := CheckAnswer(reply, ExpectedReply(7, port)); err != nil {
		t.Errorf("reply: %v", err)
	}
	ack := parseOne(t, le(uint32(36), uint16(2), uint16(0x100), uint32(7), uint32(port), uint32(0), request[:16]))
	if err := CheckAnswer(ack, ExpectedAck(req, port, 0)); err != nil {
		t.Errorf("ack 0: %v", err)
	}
	// -EINVAL echoes the request up to its nlmsg_len (19), padded with
	// a NUL that the length counts.
	nack := parseOne(t, le(uint32(16+4+20), uint16(2), uint16(0), uint32(7), uint32(port), uint32(0xffffffea), request, "\x00"))
	if err := CheckAnswer(nack, ExpectedAck(req, port, syscall.EINVAL)); err != nil {
		t.Errorf("ack -EINVAL: %v", err)
	}
}

func TestCheckAnswerNamesTheField(t *testing.T) {
	req := parseOne(t, append(request, 0))
	reply := func(length uint32, flags uint16, seq, pid uint32, text string) rawnl.Message {
		return parseOne(t, le(length, uint16(TypeGreet), flags, seq, pid, text))
	}
	n := uint32(16 + len(replyText))
	for _, tc := range []struct {
		name string
		got  rawnl.Message
		want rawnl.Message
		msg  string
	}{
		{"multi", reply(n, 2, 7, 0, replyText), ExpectedReply(7, port), "reply flags 0x2 (NLM_F_MULTI), want 0"},
		{"seq", reply(n, 0, 8, 0, replyText), ExpectedReply(7, port), "reply seq 8, want 7"},
		{"port", reply(n, 0, 7, port, replyText), ExpectedReply(7, port), "reply port 1234, want 0"},
		{"padded", reply(n+3, 0, 7, 0, replyText+"\x00\x00\x00"), ExpectedReply(7, port),
			"reply length 70, want 67, 3 bytes after the text's NUL, want none"},
		{"no NUL", reply(n-1, 0, 7, 0, replyText[:len(replyText)-1]), ExpectedReply(7, port),
			`reply length 66, want 67, text "Msg from Process 1234 has been processed by kernel" not NUL-terminated`},
		{"text", reply(n, 0, 7, 0, strings.Replace(replyText, "1234", "4321", 1)), ExpectedReply(7, port),
			`reply text "Msg from Process 4321 has been processed by kernel", want "Msg from Process 1234 has been processed by kernel"`},
		{"ack error", parseOne(t, le(uint32(36), uint16(2), uint16(0x100), uint32(7), uint32(port), uint32(0xffffffea), request[:16])),
			ExpectedAck(req, port, 0), "ack error -EINVAL, want 0"},
		{"ack uncapped", parseOne(t, le(uint32(16+4+19), uint16(2), uint16(0), uint32(7), uint32(port), uint32(0), request)),
			ExpectedAck(req, port, 0), "ack flags 0, want 0x100 (NLM_F_CAPPED), length 39, want 36, echoes 3 bytes after the request header, want 0"},
		{"ack echo", parseOne(t, le(uint32(36), uint16(2), uint16(0x100), uint32(7), uint32(port), uint32(0), uint32(19), uint16(TypeGreet), uint16(5), uint32(8), uint32(0))),
			ExpectedAck(req, port, 0), "ack echoes header {len 19 type 20 flags 0x5 seq 8 port 0}, want {len 19 type 20 flags 0x5 seq 7 port 0}"},
		{"ack as reply", parseOne(t, le(uint32(36), uint16(2), uint16(0x100), uint32(7), uint32(port), uint32(0), request[:16])),
			ExpectedReply(7, port), "reply type 2, want 20"},
	} {
		err := CheckAnswer(tc.got, tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.msg)
		}
	}
}

func TestFlagNames(t *testing.T) {
	for f, want := range map[uint16]string{
		0:      "0",
		2:      "0x2 (NLM_F_MULTI)",
		0x105:  "0x105 (NLM_F_REQUEST|NLM_F_ACK|NLM_F_CAPPED)",
		0x8000: "0x8000 (0x8000)",
	} {
		if got := FlagNames(f); got != want {
			t.Errorf("FlagNames(%#x) = %q, want %q", f, got, want)
		}
	}
}
