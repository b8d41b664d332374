// Package rawnl sends and receives raw netlink datagrams, including ones
// that github.com/mdlayher/netlink refuses to build: datagrams shorter than
// a header, headers whose length lies, and several messages in one
// datagram. Its parser is bounds-checked so that hostile or broken answers
// give errors, never panics.
package rawnl

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the length of a netlink message header (NLMSG_HDRLEN).
const HeaderLen = 16

// Netlink header flags and control types used by this package's callers.
const (
	FlagRequest = 0x1
	FlagMulti   = 0x2
	FlagAck     = 0x4

	TypeNoop    = 0x1
	TypeError   = 0x2
	TypeDone    = 0x3
	TypeOverrun = 0x4
)

// A Header is a netlink message header as it travels on the wire.
type Header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// A Message is one parsed netlink message.
type Message struct {
	Header Header
	// Data is the payload: the bytes after the header up to Header.Len.
	Data []byte
}

// Errors returned by Parse.
var (
	// ErrShortHeader means the bytes left are fewer than a header.
	ErrShortHeader = errors.New("netlink header truncated")
	// ErrBadLength means a header's length is below HeaderLen or beyond
	// the datagram.
	ErrBadLength = errors.New("netlink header length out of bounds")
)

// Align rounds n up to the netlink alignment of 4 bytes (NLMSG_ALIGN).
func Align(n int) int { return (n + 3) &^ 3 }

// AppendHeader appends h in wire format to b.
func AppendHeader(b []byte, h Header) []byte {
	b = binary.NativeEndian.AppendUint32(b, h.Len)
	b = binary.NativeEndian.AppendUint16(b, h.Type)
	b = binary.NativeEndian.AppendUint16(b, h.Flags)
	b = binary.NativeEndian.AppendUint32(b, h.Seq)
	return binary.NativeEndian.AppendUint32(b, h.PID)
}

// AppendMessage appends a message with header h and payload data to b,
// padded to the netlink alignment. If h.Len is 0 it is set to
// HeaderLen+len(data); any other value is written as is, so that callers
// can send lying lengths.
func AppendMessage(b []byte, h Header, data []byte) []byte {
	if h.Len == 0 {
		h.Len = uint32(HeaderLen + len(data))
	}
	b = AppendHeader(b, h)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// NewMessage returns a single message with header h and payload data, padded.
func NewMessage(h Header, data []byte) []byte {
	return AppendMessage(nil, h, data)
}

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("parse header of %d bytes: %w", len(b), ErrShortHeader)
	}
	return Header{
		Len:   binary.NativeEndian.Uint32(b[0:]),
		Type:  binary.NativeEndian.Uint16(b[4:]),
		Flags: binary.NativeEndian.Uint16(b[6:]),
		Seq:   binary.NativeEndian.Uint32(b[8:]),
		PID:   binary.NativeEndian.Uint32(b[12:]),
	}, nil
}

// Parse splits a datagram into messages. A trailing message may omit its
// alignment padding. It returns the messages parsed before the first
// malformed one together with an error describing it.
func Parse(b []byte) ([]Message, error) {
	var msgs []Message
	for off := 0; off < len(b); {
		h, err := ParseHeader(b[off:])
		if err != nil {
			return msgs, fmt.Errorf("message %d at offset %d: %w", len(msgs), off, err)
		}
		if h.Len < HeaderLen || uint64(h.Len) > uint64(len(b)-off) {
			return msgs, fmt.Errorf("message %d at offset %d: length %d of %d bytes left: %w",
				len(msgs), off, h.Len, len(b)-off, ErrBadLength)
		}
		msgs = append(msgs, Message{Header: h, Data: b[off+HeaderLen : off+int(h.Len)]})
		off += Align(int(h.Len))
	}
	return msgs, nil
}

// Errno returns the error number of an NLMSG_ERROR message, positive
// (22 for -EINVAL), and whether m is a well-formed NLMSG_ERROR.
func (m Message) Errno() (errno int32, ok bool) {
	if m.Header.Type != TypeError || len(m.Data) < 4 {
		return 0, false
	}
	return -int32(binary.NativeEndian.Uint32(m.Data)), true
}
