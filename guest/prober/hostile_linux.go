package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

const (
	reqAck = rawnl.FlagRequest | rawnl.FlagAck
	req    = rawnl.FlagRequest
)

// one is a case with a single datagram.
func one(name string, build func(s *rawSession) ([]byte, []string)) rawCase {
	return rawCase{name: name, build: func(s *rawSession) ([][]byte, []string) {
		d, want := build(s)
		return [][]byte{d}, want
	}}
}

func stepShortDatagrams(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases([]rawCase{{
		name: "datagrams of 0 to 15 bytes",
		build: func(s *rawSession) ([][]byte, []string) {
			_, full := s.message(greet.TypeGreet, reqAck, greet.EncodeGreeting("short"))
			var ds [][]byte
			for n := 0; n < rawnl.HeaderLen; n++ {
				ds = append(ds, full[:n])
			}
			return ds, nil
		},
	}})
}

func stepBadLength(ctx context.Context, p *prober) (string, error) {
	lying := func(name string, length uint32, payload int) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			// AppendHeader writes Len as is, even 0.
			h := rawnl.Header{Len: length, Type: greet.TypeGreet, Flags: reqAck, Seq: s.next()}
			return append(rawnl.AppendHeader(nil, h), bytes.Repeat([]byte{'a'}, payload)...), nil
		})
	}
	return p.runRawCases([]rawCase{
		lying("nlmsg_len 0", 0, 16),
		lying("nlmsg_len 1", 1, 16),
		lying("nlmsg_len 15", 15, 16),
		lying("nlmsg_len 100 in a 24-byte datagram", 100, 8),
		lying("nlmsg_len 4096 in a 1040-byte datagram", 4096, 1024),
		lying("nlmsg_len 0xffffffff", 0xffffffff, 8),
		lying("nlmsg_len 0x80000000", 0x80000000, 8),
		one("valid greeting then nlmsg_len beyond the datagram", func(s *rawSession) ([]byte, []string) {
			seq := s.next()
			d := rawnl.AppendMessage(nil, rawnl.Header{Type: greet.TypeGreet, Flags: reqAck, Seq: seq}, greet.EncodeGreeting("first"))
			d = rawnl.AppendMessage(d, rawnl.Header{Len: 1000, Type: greet.TypeGreet, Flags: reqAck, Seq: s.next()}, greet.EncodeGreeting("second"))
			return d, replyAck(seq)
		}),
	})
}

func stepEmptyGreeting(ctx context.Context, p *prober) (string, error) {
	empty := func(name string, flags uint16, payload []byte) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			seq, d := s.message(greet.TypeGreet, flags, payload)
			return d, errAck(seq, "EINVAL")
		})
	}
	return p.runRawCases([]rawCase{
		empty("no payload, NLM_F_ACK", reqAck, nil),
		empty("no payload, without NLM_F_ACK", req, nil),
		empty("payload \"\\0\", NLM_F_ACK", reqAck, []byte{0}),
		empty("payload \"\\0\", without NLM_F_ACK", req, []byte{0}),
		empty("1040 NUL bytes, NLM_F_ACK", reqAck, make([]byte, greet.OriginalPayloadLen)),
		empty("1040 NUL bytes, original client flags", rawnl.FlagAck, make([]byte, greet.OriginalPayloadLen)),
	})
}

func stepTextLimits(ctx context.Context, p *prober) (string, error) {
	text := func(name string, n int, nul bool, ok bool) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			payload := bytes.Repeat([]byte{'a'}, n)
			if nul {
				payload = append(payload, 0)
			}
			seq, d := s.message(greet.TypeGreet, reqAck, payload)
			if ok {
				return d, replyAck(seq)
			}
			return d, errAck(seq, "EINVAL")
		})
	}
	return p.runRawCases([]rawCase{
		text("1 byte", 1, true, true),
		text("1023 bytes", 1023, true, true),
		text("1024 bytes", greet.MaxText, true, true),
		text("1024 bytes without NUL", greet.MaxText, false, true),
		text("1025 bytes", greet.MaxText+1, true, false),
		text("1025 bytes without NUL", greet.MaxText+1, false, false),
		one("1024 bytes NUL-padded to 2048", func(s *rawSession) ([]byte, []string) {
			payload := append(bytes.Repeat([]byte{'a'}, greet.MaxText), make([]byte, 1024)...)
			seq, d := s.message(greet.TypeGreet, reqAck, payload)
			return d, replyAck(seq)
		}),
	})
}

func stepHugePayload(ctx context.Context, p *prober) (string, error) {
	huge := func(name string, n int, nul bool, flags uint16) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			payload := bytes.Repeat([]byte{'a'}, n)
			if nul {
				payload[n-1] = 0
			}
			seq, d := s.message(greet.TypeGreet, flags, payload)
			return d, errAck(seq, "EINVAL")
		})
	}
	return p.runRawCases([]rawCase{
		huge("8 KiB text", 8<<10, true, reqAck),
		huge("64 KiB text", 64<<10, true, reqAck),
		huge("64 KiB without NUL", 64<<10, false, reqAck),
		huge("64 KiB without NUL or NLM_F_ACK", 64<<10, false, req),
	})
}

func stepNoNUL(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases([]rawCase{
		one("\"hello\" without NUL, unpadded datagram", func(s *rawSession) ([]byte, []string) {
			seq, d := s.message(greet.TypeGreet, reqAck, []byte("hello"))
			return d[:rawnl.HeaderLen+5], replyAck(seq)
		}),
		one("\"hello\" without NUL, padding bytes not NUL", func(s *rawSession) ([]byte, []string) {
			seq, d := s.message(greet.TypeGreet, reqAck, []byte("hello"))
			copy(d[rawnl.HeaderLen+5:], "ZZZ")
			return d, replyAck(seq)
		}),
		one("\"x\" without NUL", func(s *rawSession) ([]byte, []string) {
			seq, d := s.message(greet.TypeGreet, reqAck, []byte("x"))
			return d, replyAck(seq)
		}),
	})
}

// stepHighBytes greets with bytes above 0x7f, where code that keeps text
// in a plain char differs between architectures: signed on x86-64,
// unsigned on arm64. DEL (0x7f) is left out: a module may refuse it.
func stepHighBytes(ctx context.Context, p *prober) (string, error) {
	text := func(name string, payload []byte) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			seq, d := s.message(greet.TypeGreet, reqAck, payload)
			return d, replyAck(seq)
		})
	}
	var high []byte
	for b := 0x80; b <= 0xff; b++ {
		high = append(high, byte(b))
	}
	return p.runRawCases([]rawCase{
		text("UTF-8 \"Grüße, 世界\"", greet.EncodeGreeting("Grüße, 世界")),
		text("bytes 0x80 to 0xff", append(high, 0)),
	})
}

func stepControlTypes(ctx context.Context, p *prober) (string, error) {
	var cases []rawCase
	for typ := uint16(1); typ < greet.MinType; typ++ {
		cases = append(cases,
			one(fmt.Sprintf("type %d with NLM_F_ACK", typ), func(s *rawSession) ([]byte, []string) {
				seq, d := s.message(typ, reqAck, greet.EncodeGreeting("control"))
				return d, ackOnly(seq)
			}),
			one(fmt.Sprintf("type %d with NLM_F_ACK, no payload", typ), func(s *rawSession) ([]byte, []string) {
				seq, d := s.message(typ, reqAck, nil)
				return d, ackOnly(seq)
			}),
			one(fmt.Sprintf("type %d without NLM_F_ACK", typ), func(s *rawSession) ([]byte, []string) {
				_, d := s.message(typ, req, greet.EncodeGreeting("control"))
				return d, nil
			}),
		)
	}
	return p.runRawCases(cases)
}

func stepUnknownType(ctx context.Context, p *prober) (string, error) {
	var cases []rawCase
	for _, typ := range []uint16{greet.MinType, 19, 21, 0x7fff, 0xffff} {
		for _, flags := range []uint16{reqAck, req} {
			name := fmt.Sprintf("type %#x with NLM_F_ACK", typ)
			if flags == req {
				name = fmt.Sprintf("type %#x without NLM_F_ACK", typ)
			}
			cases = append(cases, one(name, func(s *rawSession) ([]byte, []string) {
				seq, d := s.message(typ, flags, greet.EncodeGreeting("unknown"))
				return d, errAck(seq, "EOPNOTSUPP")
			}))
		}
	}
	return p.runRawCases(cases)
}

func stepBatch(ctx context.Context, p *prober) (string, error) {
	return p.runRawCases([]rawCase{
		one("three greetings", func(s *rawSession) ([]byte, []string) {
			var d []byte
			var want []string
			for _, text := range []string{"one", "two", "three"} {
				seq := s.next()
				d = rawnl.AppendMessage(d, rawnl.Header{Type: greet.TypeGreet, Flags: reqAck, Seq: seq}, greet.EncodeGreeting(text))
				want = append(want, replyAck(seq)...)
			}
			return d, want
		}),
		one("greeting, empty greeting, unknown type, NOOP, greeting without ack, greeting", func(s *rawSession) ([]byte, []string) {
			var d []byte
			var want []string
			add := func(typ, flags uint16, payload []byte, answer func(uint32) []string) {
				seq := s.next()
				d = rawnl.AppendMessage(d, rawnl.Header{Type: typ, Flags: flags, Seq: seq}, payload)
				if answer != nil {
					want = append(want, answer(seq)...)
				}
			}
			add(greet.TypeGreet, reqAck, greet.EncodeGreeting("first"), replyAck)
			add(greet.TypeGreet, reqAck, nil, func(seq uint32) []string { return errAck(seq, "EINVAL") })
			add(21, reqAck, greet.EncodeGreeting("x"), func(seq uint32) []string { return errAck(seq, "EOPNOTSUPP") })
			add(rawnl.TypeNoop, reqAck, nil, ackOnly)
			add(greet.TypeGreet, req, greet.EncodeGreeting("quiet"), nil)
			add(greet.TypeGreet, reqAck, greet.EncodeGreeting("last"), replyAck)
			return d, want
		}),
	})
}

func stepSpoofedPid(ctx context.Context, p *prober) (string, error) {
	other, err := p.rawSession()
	if err != nil {
		return "", err
	}
	defer other.Close()
	spoof := func(name string, pid func() uint32) rawCase {
		return one(name, func(s *rawSession) ([]byte, []string) {
			seq := s.next()
			return rawnl.NewMessage(rawnl.Header{Type: greet.TypeGreet, Flags: reqAck, Seq: seq, PID: pid()},
				greet.EncodeGreeting("spoofed")), replyAck(seq)
		})
	}
	info, err := p.runRawCases([]rawCase{
		spoof("nlmsg_pid 0", func() uint32 { return 0 }),
		spoof("nlmsg_pid of another socket", other.c.PID),
		spoof("nlmsg_pid 0xffffffff", func() uint32 { return 0xffffffff }),
	})
	if err != nil {
		return "", err
	}
	// The other socket must have received nothing: its own sentinel's
	// answers come first.
	got, err := other.exchange()
	if err != nil {
		return "", fmt.Errorf("other socket (port %d): %w", other.c.PID(), err)
	}
	if len(got) > 0 {
		return "", fmt.Errorf("other socket (port %d) named in nlmsg_pid: want nothing, got %s", other.c.PID(), list(got))
	}
	return info, nil
}
