//go:build !linux

package rawnl

import (
	"errors"
	"time"
)

// ErrTimeout means no datagram arrived within the timeout.
var ErrTimeout = errors.New("no datagram within timeout")

// ErrTruncated means a datagram was larger than the receive buffer.
var ErrTruncated = errors.New("datagram truncated")

var errUnimplemented = errors.New("rawnl: not implemented on this platform")

// A Conn is a raw netlink socket; netlink exists only on Linux.
type Conn struct{}

// Dial returns an error: netlink exists only on Linux.
func Dial(protocol int) (*Conn, error) { return nil, errUnimplemented }

// PID returns 0.
func (c *Conn) PID() uint32 { return 0 }

// Close returns an error.
func (c *Conn) Close() error { return errUnimplemented }

// Send returns an error.
func (c *Conn) Send(b []byte) error { return errUnimplemented }

// SendFlags returns an error.
func (c *Conn) SendFlags(b []byte, flags int) error { return errUnimplemented }

// Receive returns an error.
func (c *Conn) Receive(timeout time.Duration) ([]byte, error) { return nil, errUnimplemented }

// ReceiveMessages returns an error.
func (c *Conn) ReceiveMessages(timeout time.Duration) ([]Message, error) {
	return nil, errUnimplemented
}

// Collect returns an error.
func (c *Conn) Collect(quiet, total time.Duration) ([]Message, error) { return nil, errUnimplemented }

// SetReadBuffer returns an error.
func (c *Conn) SetReadBuffer(n int) error { return errUnimplemented }

// ReadBuffer returns an error.
func (c *Conn) ReadBuffer() (int, error) { return 0, errUnimplemented }
