package greet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/greet/rawnl"
)

// Constants of the module's wire contract.
const (
	// Protocol is the module's default netlink protocol number.
	Protocol = 31
	// TypeGreet is the message type of greetings and replies (NLMSG_GREET).
	TypeGreet = 20
	// MaxText is the longest greeting text the module accepts, in bytes.
	MaxText = 1024
	// OriginalPayloadLen is the payload length the original C client sends:
	// its text NUL-padded to NLMSG_SPACE(MaxText).
	OriginalPayloadLen = 1040
	// ModuleName is the name the kernel knows the module by.
	ModuleName = "NetlinkGreetingsLKM"
	// HeaderLen is the length of a netlink message header (NLMSG_HDRLEN).
	HeaderLen = rawnl.HeaderLen
	// MinType is NLMSG_MIN_TYPE: types below it are netlink control types.
	MinType = 16
)

// Kernel log lines the module prints on load and unload (kmod/MESSAGES.md).
// The harness expects them in the insmod and rmmod steps' log windows.
const (
	LogLoaded   = ModuleName + ": loaded, netlink protocol %d"
	LogUnloaded = ModuleName + ": unloaded"
	// LogBadProtocol is printed when insmod gets protocol= out of range.
	LogBadProtocol = ModuleName + ": invalid netlink protocol %d, must be 0 to 31"
	// LogGreeting starts the line logged for a greeting from a port; the
	// text follows, escaped by LogEscape and cut at LogTextMax bytes.
	LogGreeting = ModuleName + ": greeting from port %d: "
	// LogTextMax is how many bytes of a greeting's text the line shows.
	LogTextMax = 64
	// LogBurst is how many greeting lines the module may log in a row
	// (pr_info_ratelimited: DEFAULT_RATELIMIT_BURST lines per
	// DEFAULT_RATELIMIT_INTERVAL).
	LogBurst = 10
	// LogInterval is the rate limit's interval (DEFAULT_RATELIMIT_INTERVAL).
	LogInterval = 5 * time.Second

	// Debug lines (pr_debug: printed only with dynamic debug on, or a
	// module built with -DDEBUG).
	LogDebugMessage   = ModuleName + ": message type %d len %d flags 0x%x seq %d port %d"
	LogDebugMalformed = ModuleName + ": malformed message, len %d with %d bytes left, dropping datagram"
	// LogDebugReplyFailed starts the line of a reply that could not be
	// sent; the negative errno follows.
	LogDebugReplyFailed = ModuleName + ": reply to port %d failed: error -"
)

// LogEscape returns text as the kernel's %*pE prints it with no flags
// (ESCAPE_ANY_NP): printable bytes as they are, the whitespace controls
// and \a, \e and NUL as C escapes, any other byte as a 3-digit octal
// escape. Printable is the kernel's ctype, which counts 0xa0-0xff as
// printable Latin-1, so UTF-8 sequences pass through unless they hold a
// byte 0x80-0x9f.
func LogEscape(text []byte) []byte {
	var out []byte
	for _, c := range text {
		if kernelIsPrint(c) {
			out = append(out, c)
			continue
		}
		switch c {
		case '\n':
			out = append(out, `\n`...)
		case '\r':
			out = append(out, `\r`...)
		case '\t':
			out = append(out, `\t`...)
		case '\v':
			out = append(out, `\v`...)
		case '\f':
			out = append(out, `\f`...)
		case '\a':
			out = append(out, `\a`...)
		case 0x1b:
			out = append(out, `\e`...)
		case 0:
			out = append(out, `\0`...)
		default:
			out = append(out, '\\', '0'+c>>6, '0'+(c>>3)&7, '0'+c&7)
		}
	}
	return out
}

// kernelIsPrint is isprint() of the kernel's lib/ctype.c.
func kernelIsPrint(c byte) bool {
	return (c >= 0x20 && c < 0x7f) || c >= 0xa0
}

// Errors returned by the decoders.
var (
	// ErrNotTerminated means a reply's text lacks its terminating NUL.
	ErrNotTerminated = errors.New("reply text is not NUL-terminated")
	// ErrShortAck means an NLMSG_ERROR payload is shorter than its error code.
	ErrShortAck = errors.New("NLMSG_ERROR payload shorter than 4 bytes")
)

// ReplyText returns the text the module replies with to a greeting sent
// from netlink port portid.
func ReplyText(portid uint32) string {
	return "Msg from Process " + strconv.FormatUint(uint64(portid), 10) + " has been processed by kernel"
}

// EncodeGreeting returns the payload of a greeting: text followed by a NUL.
func EncodeGreeting(text string) []byte {
	b := make([]byte, len(text)+1)
	copy(b, text)
	return b
}

// EncodeOriginalGreeting returns the payload the original C client sends:
// text NUL-padded to OriginalPayloadLen bytes. Text longer than
// OriginalPayloadLen-1 bytes is cut so that a NUL always ends it.
func EncodeOriginalGreeting(text string) []byte {
	b := make([]byte, OriginalPayloadLen)
	copy(b[:OriginalPayloadLen-1], text)
	return b
}

// GreetingText returns the text the module takes from a greeting payload:
// everything up to the first NUL, or the whole payload if there is none.
func GreetingText(payload []byte) []byte {
	if i := bytes.IndexByte(payload, 0); i >= 0 {
		return payload[:i]
	}
	return payload
}

// DecodeReply returns the text of a reply payload: the bytes before its
// first NUL. It returns ErrNotTerminated if the payload has no NUL.
func DecodeReply(payload []byte) (string, error) {
	i := bytes.IndexByte(payload, 0)
	if i < 0 {
		return string(payload), fmt.Errorf("decode reply %q: %w", Truncate(string(payload), 80), ErrNotTerminated)
	}
	return string(payload[:i]), nil
}

// DecodeAck returns the error number carried by an NLMSG_ERROR payload:
// 0 for an acknowledgement, for instance syscall.EINVAL for -EINVAL.
func DecodeAck(payload []byte) (syscall.Errno, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("decode ack of %d bytes: %w", len(payload), ErrShortAck)
	}
	code := int32(binary.NativeEndian.Uint32(payload))
	if code > 0 {
		return 0, fmt.Errorf("decode ack: positive error code %d", code)
	}
	return syscall.Errno(-code), nil
}

// EncodeAck returns an NLMSG_ERROR payload carrying errno (0 for an
// acknowledgement) without the echoed request.
func EncodeAck(errno syscall.Errno) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
}

// ErrnoName returns the C name of errno for messages, such as "EINVAL",
// or "0" for no error.
func ErrnoName(errno syscall.Errno) string {
	switch errno {
	case 0:
		return "0"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.EOPNOTSUPP:
		return "EOPNOTSUPP"
	case syscall.ENOBUFS:
		return "ENOBUFS"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.EPERM:
		return "EPERM"
	case syscall.EMSGSIZE:
		return "EMSGSIZE"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EFAULT:
		return "EFAULT"
	case syscall.EAGAIN:
		return "EAGAIN"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	}
	return "errno " + strconv.Itoa(int(errno))
}

// Truncate returns s cut to n bytes, with "..." when it was longer: for
// quoting payloads and kernel records in messages.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
