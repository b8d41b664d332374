package rawgreet

import (
	"bytes"
	"fmt"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

// The flags of a request with and without an ack.
const (
	ReqAck = rawnl.FlagRequest | rawnl.FlagAck
	Req    = rawnl.FlagRequest
)

// One is a case with a single datagram.
func One(name string, build func(s *Session) ([]byte, []string)) Case {
	return Case{Name: name, Build: func(s *Session) ([][]byte, []string) {
		d, want := build(s)
		return [][]byte{d}, want
	}}
}

func ShortDatagrams() []Case {
	return []Case{{
		Name: "datagrams of 0 to 15 bytes",
		Build: func(s *Session) ([][]byte, []string) {
			_, full := s.Message(greet.TypeGreet, ReqAck, greet.EncodeGreeting("short"))
			var ds [][]byte
			for n := 0; n < rawnl.HeaderLen; n++ {
				ds = append(ds, full[:n])
			}
			return ds, nil
		},
	}}
}

func BadLength() []Case {
	lying := func(name string, length uint32, payload int) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			// AppendHeader writes Len as is, even 0.
			h := rawnl.Header{Len: length, Type: greet.TypeGreet, Flags: ReqAck, Seq: s.Next()}
			return append(rawnl.AppendHeader(nil, h), bytes.Repeat([]byte{'a'}, payload)...), nil
		})
	}
	return []Case{
		lying("nlmsg_len 0", 0, 16),
		lying("nlmsg_len 1", 1, 16),
		lying("nlmsg_len 15", 15, 16),
		lying("nlmsg_len 100 in a 24-byte datagram", 100, 8),
		lying("nlmsg_len 4096 in a 1040-byte datagram", 4096, 1024),
		lying("nlmsg_len 0xffffffff", 0xffffffff, 8),
		lying("nlmsg_len 0x80000000", 0x80000000, 8),
		One("valid greeting then nlmsg_len beyond the datagram", func(s *Session) ([]byte, []string) {
			seq := s.Next()
			d := rawnl.AppendMessage(nil, rawnl.Header{Type: greet.TypeGreet, Flags: ReqAck, Seq: seq}, greet.EncodeGreeting("first"))
			d = rawnl.AppendMessage(d, rawnl.Header{Len: 1000, Type: greet.TypeGreet, Flags: ReqAck, Seq: s.Next()}, greet.EncodeGreeting("second"))
			return d, ReplyAck(seq)
		}),
	}
}

func EmptyGreeting() []Case {
	empty := func(name string, flags uint16, payload []byte) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			seq, d := s.Message(greet.TypeGreet, flags, payload)
			return d, ErrAck(seq, "EINVAL")
		})
	}
	return Invalid(
		empty("no payload, NLM_F_ACK", ReqAck, nil),
		empty("no payload, without NLM_F_ACK", Req, nil),
		empty("payload \"\\0\", NLM_F_ACK", ReqAck, []byte{0}),
		empty("payload \"\\0\", without NLM_F_ACK", Req, []byte{0}),
		empty("1040 NUL bytes, NLM_F_ACK", ReqAck, make([]byte, greet.OriginalPayloadLen)),
		empty("1040 NUL bytes, original client flags", rawnl.FlagAck, make([]byte, greet.OriginalPayloadLen)),
	)
}

func TextLimits() []Case {
	text := func(name string, n int, nul bool, ok bool) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			// Texts too long are of another letter, so that their
			// log line, if any, differs from a valid one's.
			letter := byte('a')
			if !ok {
				letter = 'b'
			}
			payload := bytes.Repeat([]byte{letter}, n)
			if nul {
				payload = append(payload, 0)
			}
			seq, d := s.Message(greet.TypeGreet, ReqAck, payload)
			if ok {
				return d, ReplyAck(seq)
			}
			return d, ErrAck(seq, "EINVAL")
		})
	}
	return append(Invalid(
		text("1025 bytes", greet.MaxText+1, true, false),
		text("1025 bytes without NUL", greet.MaxText+1, false, false),
	),
		text("1 byte", 1, true, true),
		text("1023 bytes", 1023, true, true),
		text("1024 bytes", greet.MaxText, true, true),
		text("1024 bytes without NUL", greet.MaxText, false, true),
		One("1024 bytes NUL-padded to 2048", func(s *Session) ([]byte, []string) {
			payload := append(bytes.Repeat([]byte{'a'}, greet.MaxText), make([]byte, 1024)...)
			seq, d := s.Message(greet.TypeGreet, ReqAck, payload)
			return d, ReplyAck(seq)
		}),
	)
}

func HugePayload() []Case {
	huge := func(name string, n int, nul bool, flags uint16) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			payload := bytes.Repeat([]byte{'a'}, n)
			if nul {
				payload[n-1] = 0
			}
			seq, d := s.Message(greet.TypeGreet, flags, payload)
			return d, ErrAck(seq, "EINVAL")
		})
	}
	return Invalid(
		huge("8 KiB text", 8<<10, true, ReqAck),
		huge("64 KiB text", 64<<10, true, ReqAck),
		huge("64 KiB without NUL", 64<<10, false, ReqAck),
		huge("64 KiB without NUL or NLM_F_ACK", 64<<10, false, Req),
	)
}

func NoNUL() []Case {
	return []Case{
		One("\"hello\" without NUL, unpadded datagram", func(s *Session) ([]byte, []string) {
			seq, d := s.Message(greet.TypeGreet, ReqAck, []byte("hello"))
			return d[:rawnl.HeaderLen+5], ReplyAck(seq)
		}),
		One("\"hello\" without NUL, padding bytes not NUL", func(s *Session) ([]byte, []string) {
			seq, d := s.Message(greet.TypeGreet, ReqAck, []byte("hello"))
			copy(d[rawnl.HeaderLen+5:], "ZZZ")
			return d, ReplyAck(seq)
		}),
		One("\"x\" without NUL", func(s *Session) ([]byte, []string) {
			seq, d := s.Message(greet.TypeGreet, ReqAck, []byte("x"))
			return d, ReplyAck(seq)
		}),
	}
}

// stepHighBytes greets with bytes above 0x7f, where code that keeps text
// in a plain char differs between architectures: signed on x86-64,
// unsigned on arm64. DEL (0x7f) is left out: a module may refuse it.
func HighBytes() []Case {
	text := func(name string, payload []byte) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			seq, d := s.Message(greet.TypeGreet, ReqAck, payload)
			return d, ReplyAck(seq)
		})
	}
	var high []byte
	for b := 0x80; b <= 0xff; b++ {
		high = append(high, byte(b))
	}
	return []Case{
		text("UTF-8 \"Grüße, 世界\"", greet.EncodeGreeting("Grüße, 世界")),
		text("bytes 0x80 to 0xff", append(high, 0)),
	}
}

func ControlTypes() []Case {
	var cases []Case
	for typ := uint16(1); typ < greet.MinType; typ++ {
		cases = append(cases,
			One(fmt.Sprintf("type %d with NLM_F_ACK", typ), func(s *Session) ([]byte, []string) {
				seq, d := s.Message(typ, ReqAck, greet.EncodeGreeting("control"))
				return d, AckOnly(seq)
			}),
			One(fmt.Sprintf("type %d with NLM_F_ACK, no payload", typ), func(s *Session) ([]byte, []string) {
				seq, d := s.Message(typ, ReqAck, nil)
				return d, AckOnly(seq)
			}),
			One(fmt.Sprintf("type %d without NLM_F_ACK", typ), func(s *Session) ([]byte, []string) {
				_, d := s.Message(typ, Req, greet.EncodeGreeting("control"))
				return d, nil
			}),
		)
	}
	return cases
}

func UnknownType() []Case {
	var cases []Case
	for _, typ := range []uint16{greet.MinType, 19, 21, 0x7fff, 0xffff} {
		for _, flags := range []uint16{ReqAck, Req} {
			name := fmt.Sprintf("type %#x with NLM_F_ACK", typ)
			if flags == Req {
				name = fmt.Sprintf("type %#x without NLM_F_ACK", typ)
			}
			cases = append(cases, One(name, func(s *Session) ([]byte, []string) {
				seq, d := s.Message(typ, flags, greet.EncodeGreeting("unknown"))
				return d, ErrAck(seq, "EOPNOTSUPP")
			}))
		}
	}
	return Invalid(cases...)
}

func Batch() []Case {
	return []Case{
		One("three greetings", func(s *Session) ([]byte, []string) {
			var d []byte
			var want []string
			for _, text := range []string{"one", "two", "three"} {
				seq := s.Next()
				d = rawnl.AppendMessage(d, rawnl.Header{Type: greet.TypeGreet, Flags: ReqAck, Seq: seq}, greet.EncodeGreeting(text))
				want = append(want, ReplyAck(seq)...)
			}
			return d, want
		}),
		One("greeting, empty greeting, unknown type, NOOP, greeting without ack, greeting", func(s *Session) ([]byte, []string) {
			var d []byte
			var want []string
			add := func(typ, flags uint16, payload []byte, answer func(uint32) []string) {
				seq := s.Next()
				d = rawnl.AppendMessage(d, rawnl.Header{Type: typ, Flags: flags, Seq: seq}, payload)
				if answer != nil {
					want = append(want, answer(seq)...)
				}
			}
			add(greet.TypeGreet, ReqAck, greet.EncodeGreeting("first"), ReplyAck)
			add(greet.TypeGreet, ReqAck, nil, func(seq uint32) []string { return ErrAck(seq, "EINVAL") })
			add(21, ReqAck, greet.EncodeGreeting("x"), func(seq uint32) []string { return ErrAck(seq, "EOPNOTSUPP") })
			add(rawnl.TypeNoop, ReqAck, nil, AckOnly)
			add(greet.TypeGreet, Req, greet.EncodeGreeting("quiet"), nil)
			add(greet.TypeGreet, ReqAck, greet.EncodeGreeting("last"), ReplyAck)
			return d, want
		}),
		One(fmt.Sprintf("%d mixed messages in one datagram", BigBatch), func(s *Session) ([]byte, []string) {
			var d []byte
			var want []string
			for i := range BigBatch {
				seq := s.Next()
				typ, flags, payload := uint16(greet.TypeGreet), uint16(ReqAck), greet.EncodeGreeting(fmt.Sprintf("batch %d", i))
				var answer []string
				// Every fifth message is invalid or a control type; the
				// greetings alternate with and without NLM_F_ACK.
				switch {
				case i%10 == 3:
					payload, answer = nil, ErrAck(seq, "EINVAL")
				case i%10 == 5:
					typ, answer = 21, ErrAck(seq, "EOPNOTSUPP")
				case i%10 == 8:
					typ, answer = rawnl.TypeNoop, AckOnly(seq)
				case i%10 == 9:
					typ, flags, answer = rawnl.TypeNoop, Req, nil
				case i%2 == 1:
					flags, answer = Req, nil
				default:
					answer = ReplyAck(seq)
				}
				d = rawnl.AppendMessage(d, rawnl.Header{Type: typ, Flags: flags, Seq: seq}, payload)
				want = append(want, answer...)
			}
			return d, want
		}),
	}
}

// BigBatch is how many messages the batch step's largest datagram holds:
// far more than a module that stops after a few would answer.
const BigBatch = 40

// SpoofedPid are greetings whose nlmsg_pid names another port (0, other's,
// 0xffffffff): the reply must still go to the sender.
func SpoofedPid(other *Session) []Case {
	spoof := func(name string, pid func() uint32) Case {
		return One(name, func(s *Session) ([]byte, []string) {
			seq := s.Next()
			return rawnl.NewMessage(rawnl.Header{Type: greet.TypeGreet, Flags: ReqAck, Seq: seq, PID: pid()},
				greet.EncodeGreeting("spoofed")), ReplyAck(seq)
		})
	}
	return []Case{
		spoof("nlmsg_pid 0", func() uint32 { return 0 }),
		spoof("nlmsg_pid of another socket", other.Conn.PID),
		spoof("nlmsg_pid 0xffffffff", func() uint32 { return 0xffffffff }),
	}
}
