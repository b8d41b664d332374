//go:build linux

package rawnl_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"golang.org/x/sys/unix"
)

// TestIntegrationRoute talks to rtnetlink, which any user may do: it acks
// control messages like the greeting module does.
func TestIntegrationRoute(t *testing.T) {
	c, err := rawnl.Dial(unix.NETLINK_ROUTE)
	if err != nil {
		t.Skipf("skipping: no netlink here: %v", err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}

	// A datagram shorter than a header: rtnetlink drops it.
	if err := c.Send([]byte{1, 2, 3}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// NLMSG_NOOP with NLM_F_ACK: acked with error 0.
	if err := c.Send(rawnl.NewMessage(rawnl.Header{Type: rawnl.TypeNoop, Flags: rawnl.FlagRequest | rawnl.FlagAck, Seq: 42}, nil)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs, err := c.Collect(200*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var got []string
	for _, m := range msgs {
		errno, ok := m.Errno()
		if !ok {
			t.Fatalf("unexpected message %+v", m.Header)
		}
		got = append(got, unix.ErrnoName(unix.Errno(errno))+"/"+strconv.FormatUint(uint64(m.Header.Seq), 10))
	}
	// ErrnoName(0) is "".
	if diff := cmp.Diff([]string{"/42"}, got); diff != "" {
		t.Fatalf("unexpected answers (-want +got):\n%s", diff)
	}

	if _, err := c.Receive(10 * time.Millisecond); !errors.Is(err, rawnl.ErrTimeout) {
		t.Fatalf("Receive on a quiet socket: want ErrTimeout, got %v", err)
	}
}
