package greet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"

	"github.com/kmodtest/kmodtest/greet/rawnl"
)

// FlagCapped is NLM_F_CAPPED: an ack that echoes only the request's
// header, as netlink_ack() sends for error 0 (and for every error on a
// socket with NETLINK_CAP_ACK, which no step sets).
const FlagCapped = 0x100

// ExpectedReply returns the reply the module must send to a greeting
// with sequence number seq from port, byte for byte: type TypeGreet, no
// flags, the request's seq, port 0 (the kernel), and ReplyText(port) with
// its NUL and no padding as the payload.
func ExpectedReply(seq, port uint32) rawnl.Message {
	text := EncodeGreeting(ReplyText(port))
	return rawnl.Message{
		Header: rawnl.Header{Len: uint32(HeaderLen + len(text)), Type: TypeGreet, Seq: seq},
		Data:   text,
	}
}

// ExpectedAck returns the NLMSG_ERROR that the kernel's netlink_ack()
// builds for req, sent from port, answered with errno: the request's seq,
// the sender's port, then the error code and the request echoed. Error 0
// echoes the header only and sets NLM_F_CAPPED; an error echoes the whole
// request (nlmsg_len bytes) without flags, and nlmsg_end() pads it with
// NULs to the netlink alignment and counts the padding in the length
// (seen on 6.1). The module passes no extended ack, so there are no
// attributes after the echo.
func ExpectedAck(req rawnl.Message, port uint32, errno syscall.Errno) rawnl.Message {
	data := EncodeAck(errno)
	data = rawnl.AppendHeader(data, req.Header)
	var flags uint16 = FlagCapped
	if errno != 0 {
		data = append(data, req.Data...)
		data = append(data, make([]byte, rawnl.Align(len(data))-len(data))...)
		flags = 0
	}
	return rawnl.Message{
		Header: rawnl.Header{Len: uint32(HeaderLen + len(data)), Type: rawnl.TypeError, Flags: flags, Seq: req.Header.Seq, PID: port},
		Data:   data,
	}
}

// CheckAnswer compares an answer with the one the protocol promises
// (ExpectedReply, ExpectedAck), field by field: the header's type, flags,
// sequence number, port and length, then the payload (the reply's text
// and its NUL; the ack's error code and the echoed request). The error
// names each field that differs, what it is and what it should be, such
// as "reply flags 0x2 (NLM_F_MULTI), want 0".
func CheckAnswer(got, want rawnl.Message) error {
	kind := answerKind(want.Header.Type)
	var diffs []string
	differ := func(format string, args ...any) {
		diffs = append(diffs, fmt.Sprintf(format, args...))
	}
	g, w := got.Header, want.Header
	if g.Type != w.Type {
		differ("type %d, want %d", g.Type, w.Type)
	}
	if g.Flags != w.Flags {
		differ("flags %s, want %s", FlagNames(g.Flags), FlagNames(w.Flags))
	}
	if g.Seq != w.Seq {
		differ("seq %d, want %d", g.Seq, w.Seq)
	}
	if g.PID != w.PID {
		differ("port %d, want %d", g.PID, w.PID)
	}
	if g.Len != w.Len {
		differ("length %d, want %d", g.Len, w.Len)
	}
	if g.Type == w.Type {
		switch w.Type {
		case TypeGreet:
			diffs = append(diffs, replyPayloadDiffs(got.Data, want.Data)...)
		case rawnl.TypeError:
			diffs = append(diffs, ackPayloadDiffs(got.Data, want.Data)...)
		default:
			if !bytes.Equal(got.Data, want.Data) {
				differ("payload %q, want %q", Truncate(string(got.Data), 80), Truncate(string(want.Data), 80))
			}
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s", kind, strings.Join(diffs, ", "))
}

func answerKind(typ uint16) string {
	switch typ {
	case TypeGreet:
		return "reply"
	case rawnl.TypeError:
		return "ack"
	}
	return fmt.Sprintf("type %d answer", typ)
}

// replyPayloadDiffs compares a reply's payload: the text, its NUL, and
// nothing after it.
func replyPayloadDiffs(got, want []byte) []string {
	if bytes.Equal(got, want) {
		return nil
	}
	wantText, _ := DecodeReply(want)
	text, err := DecodeReply(got)
	switch {
	case err != nil:
		return []string{fmt.Sprintf("text %q not NUL-terminated, want %q and a NUL", Truncate(text, 80), wantText)}
	case text != wantText:
		return []string{fmt.Sprintf("text %q, want %q", Truncate(text, 80), wantText)}
	}
	return []string{fmt.Sprintf("%d bytes after the text's NUL, want none", len(got)-len(text)-1)}
}

// ackPayloadDiffs compares an NLMSG_ERROR payload: the error code, the
// echoed request header and the echoed request payload.
func ackPayloadDiffs(got, want []byte) []string {
	if bytes.Equal(got, want) {
		return nil
	}
	if len(got) < 4 {
		return []string{fmt.Sprintf("payload of %d bytes, want %d", len(got), len(want))}
	}
	var diffs []string
	gcode := int32(binary.NativeEndian.Uint32(got))
	wcode := int32(binary.NativeEndian.Uint32(want))
	if gcode != wcode {
		diffs = append(diffs, fmt.Sprintf("error %s, want %s", codeName(gcode), codeName(wcode)))
	}
	gh, gerr := rawnl.ParseHeader(got[4:])
	wh, _ := rawnl.ParseHeader(want[4:])
	if gerr != nil {
		return append(diffs, fmt.Sprintf("echoes %d bytes of the request, want its %d-byte header", len(got)-4, rawnl.HeaderLen))
	}
	if gh != wh {
		diffs = append(diffs, fmt.Sprintf("echoes header {len %d type %d flags %#x seq %d port %d}, want {len %d type %d flags %#x seq %d port %d}",
			gh.Len, gh.Type, gh.Flags, gh.Seq, gh.PID, wh.Len, wh.Type, wh.Flags, wh.Seq, wh.PID))
	}
	gbody, wbody := got[4+rawnl.HeaderLen:], want[4+rawnl.HeaderLen:]
	if !bytes.Equal(gbody, wbody) {
		i := 0
		for i < len(gbody) && i < len(wbody) && gbody[i] == wbody[i] {
			i++
		}
		diffs = append(diffs, fmt.Sprintf("echoes %d bytes after the request header, want %d (first difference at byte %d)", len(gbody), len(wbody), i))
	}
	return diffs
}

// codeName returns an NLMSG_ERROR code as messages show it: "0", "-EINVAL".
func codeName(code int32) string {
	if code > 0 {
		return fmt.Sprintf("+%d", code)
	}
	if code == 0 {
		return "0"
	}
	return "-" + ErrnoName(syscall.Errno(-code))
}

// FlagNames returns netlink header flags for messages: "0", or the value
// and the names of its bits, such as "0x2 (NLM_F_MULTI)" or
// "0x104 (NLM_F_ACK|NLM_F_CAPPED)". The bits 0x100 and 0x200 are named
// as an ack uses them (NLM_F_CAPPED, NLM_F_ACK_TLVS).
func FlagNames(f uint16) string {
	if f == 0 {
		return "0"
	}
	names := []struct {
		bit  uint16
		name string
	}{
		{0x1, "NLM_F_REQUEST"}, {0x2, "NLM_F_MULTI"}, {0x4, "NLM_F_ACK"}, {0x8, "NLM_F_ECHO"},
		{0x10, "NLM_F_DUMP_INTR"}, {0x20, "NLM_F_DUMP_FILTERED"},
		{FlagCapped, "NLM_F_CAPPED"}, {0x200, "NLM_F_ACK_TLVS"},
	}
	var parts []string
	rest := f
	for _, n := range names {
		if f&n.bit != 0 {
			parts = append(parts, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rest))
	}
	return fmt.Sprintf("%#x (%s)", f, strings.Join(parts, "|"))
}
