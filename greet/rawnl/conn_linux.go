//go:build linux

package rawnl

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout means no datagram arrived within the timeout.
var ErrTimeout = errors.New("no datagram within timeout")

// ErrTruncated means a datagram was larger than the receive buffer.
var ErrTruncated = errors.New("datagram truncated")

// MaxDatagram is the size of a Conn's receive buffer. A datagram larger
// than this is reported as ErrTruncated.
const MaxDatagram = 256 << 10

// A Conn is a raw AF_NETLINK socket bound to a port the kernel picked.
// Send may be called from several goroutines at once; Receive serializes
// its callers.
type Conn struct {
	fd  int
	pid uint32

	mu     sync.Mutex // guards buf and closed
	buf    []byte
	closed bool
}

// Dial opens a raw netlink socket of the given protocol and binds it.
func Dial(protocol int) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_NETLINK, SOCK_RAW, %d): %w", protocol, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink protocol %d: %w", protocol, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname netlink protocol %d: %w", protocol, err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("getsockname netlink protocol %d: unexpected address %T", protocol, sa)
	}
	return &Conn{fd: fd, pid: nl.Pid, buf: make([]byte, MaxDatagram)}, nil
}

// PID returns the socket's netlink port: the address the kernel answers.
func (c *Conn) PID() uint32 { return c.pid }

// FD returns the socket's file descriptor.
func (c *Conn) FD() int { return c.fd }

// Close closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return unix.Close(c.fd)
}

// Send sends b as one datagram to the kernel (port 0).
func (c *Conn) Send(b []byte) error {
	return c.SendFlags(b, 0)
}

// SendFlags sends b as one datagram to the kernel with sendto flags such
// as unix.MSG_DONTWAIT.
func (c *Conn) SendFlags(b []byte, flags int) error {
	for {
		err := unix.Sendto(c.fd, b, flags, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send %d-byte datagram: %w", len(b), err)
		}
		return nil
	}
}

// Receive returns the next datagram, waiting at most timeout for it. It
// returns ErrTimeout if none arrived, and the socket's pending error (such
// as ENOBUFS after the receive buffer overflowed) if there is one.
func (c *Conn) Receive(timeout time.Duration) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("receive: %w", unix.EBADF)
	}
	deadline := time.Now().Add(timeout)
	for {
		n, _, rflags, _, err := unix.Recvmsg(c.fd, c.buf, nil, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if rflags&unix.MSG_TRUNC != 0 {
				return nil, fmt.Errorf("receive: %w: more than %d bytes", ErrTruncated, len(c.buf))
			}
			return append([]byte(nil), c.buf[:n]...), nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return nil, fmt.Errorf("receive: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, ErrTimeout
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		_, err = unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}, ms)
		if err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("poll: %w", err)
		}
	}
}

// ReceiveMessages receives one datagram like Receive and parses it.
func (c *Conn) ReceiveMessages(timeout time.Duration) ([]Message, error) {
	b, err := c.Receive(timeout)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Collect receives datagrams until timeout passes with none arriving or
// until total has passed, and returns all their messages. A socket error
// ends the collection and is returned with what arrived before it.
func (c *Conn) Collect(quiet, total time.Duration) ([]Message, error) {
	var all []Message
	end := time.Now().Add(total)
	for {
		wait := min(quiet, time.Until(end))
		if wait < 0 {
			return all, nil
		}
		msgs, err := c.ReceiveMessages(wait)
		all = append(all, msgs...)
		if errors.Is(err, ErrTimeout) {
			return all, nil
		}
		if err != nil {
			return all, err
		}
	}
}

// SetReadBuffer sets the socket's receive buffer to n bytes, beyond the
// rmem_max limit where the caller has CAP_NET_ADMIN (SO_RCVBUFFORCE).
func (c *Conn) SetReadBuffer(n int) error {
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); err == nil {
		return nil
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n); err != nil {
		return fmt.Errorf("set receive buffer to %d bytes: %w", n, err)
	}
	return nil
}

// ReadBuffer returns the socket's receive buffer size as the kernel
// reports it (twice what was set, for bookkeeping overhead).
func (c *Conn) ReadBuffer() (int, error) {
	n, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0, fmt.Errorf("get receive buffer: %w", err)
	}
	return n, nil
}
