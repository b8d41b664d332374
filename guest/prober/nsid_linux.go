package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kmodtest/kmodtest/greet/rawnl"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// How the netns-freed step sees a network namespace go away: it gives the
// namespace an nsid in the initial namespace (RTM_NEWNSID) while it is
// alive, and waits for RTM_DELNSID for that nsid on a socket subscribed
// to RTNLGRP_NSID. The kernel sends it from cleanup_net(), which runs only
// once the namespace's last reference is dropped: an nsid holds no
// reference, so a namespace that something still holds (a get_net()
// without its put_net()) never sends it. The kernel does this the same
// way from 4.x to 7.x.

// rtgenmsgLen is the family header before an nsid message's attributes:
// struct rtgenmsg (one byte) aligned to NLMSG_ALIGNTO.
const rtgenmsgLen = 4

// nsidRequest encodes an RTM_NEWNSID or RTM_GETNSID request with the
// attributes attrs (NETNSA_*), as iproute2's "ip netns set" does.
func nsidRequest(typ uint16, flags uint16, seq uint32, attrs []netlink.Attribute) ([]byte, error) {
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, fmt.Errorf("encode nsid attributes: %w", err)
	}
	data := append(make([]byte, rtgenmsgLen), b...) // rtgen_family AF_UNSPEC
	return rawnl.NewMessage(rawnl.Header{Type: typ, Flags: flags, Seq: seq}, data), nil
}

// nsidAttrs are the attributes of an RTM_NEWNSID request giving the
// network namespace open as fd the nsid nsid (-1: any free one).
func nsidAttrs(nsid int32, fd int) []netlink.Attribute {
	return []netlink.Attribute{
		{Type: unix.NETNSA_NSID, Data: s32(nsid)},
		{Type: unix.NETNSA_FD, Data: s32(int32(fd))},
	}
}

// s32 encodes v as a netlink s32 attribute value.
func s32(v int32) []byte { return binary.NativeEndian.AppendUint32(nil, uint32(v)) }

// parseNsid returns the NETNSA_NSID of an RTM_NEWNSID or RTM_DELNSID
// message (a notification, or the answer to RTM_GETNSID).
func parseNsid(m rawnl.Message) (int32, error) {
	if m.Header.Type != unix.RTM_NEWNSID && m.Header.Type != unix.RTM_DELNSID {
		return 0, fmt.Errorf("message type %d is not RTM_NEWNSID or RTM_DELNSID", m.Header.Type)
	}
	if len(m.Data) < rtgenmsgLen {
		return 0, fmt.Errorf("nsid message of %d bytes, shorter than its %d-byte family header", len(m.Data), rtgenmsgLen)
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[rtgenmsgLen:])
	if err != nil {
		return 0, fmt.Errorf("nsid message attributes: %w", err)
	}
	var nsid int32
	found := false
	for ad.Next() {
		if ad.Type() == unix.NETNSA_NSID {
			nsid, found = ad.Int32(), true
		}
	}
	if err := ad.Err(); err != nil {
		return 0, fmt.Errorf("nsid message attributes: %w", err)
	}
	if !found {
		return 0, errors.New("nsid message without NETNSA_NSID")
	}
	return nsid, nil
}

// A watchedNetns is a network namespace the netns-freed step served and
// watches.
type watchedNetns struct {
	what string // how it was made and served
	name string // "net:[inode]", as /proc/PID/ns/net reads
	nsid int32  // its nsid in the initial network namespace
	// gone is when its last process and socket were gone; freed is how
	// long after that its RTM_DELNSID came, 0 until it came.
	gone  time.Time
	freed time.Duration
}

func (n *watchedNetns) String() string {
	return fmt.Sprintf("network namespace %s (nsid %d, %s)", n.name, n.nsid, n.what)
}

// An nsidWatch names network namespaces with nsids and sees them freed.
// Both sockets are in the initial network namespace.
type nsidWatch struct {
	req    *rawnl.Conn // RTM_NEWNSID and RTM_GETNSID requests
	events *rawnl.Conn // subscribed to RTNLGRP_NSID
	seq    uint32
}

// dialNsidWatch opens the watch's sockets; call it from a thread in the
// initial network namespace.
func dialNsidWatch() (*nsidWatch, error) {
	events, err := rawnl.Dial(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(events.FD(), unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.RTNLGRP_NSID); err != nil {
		events.Close()
		return nil, fmt.Errorf("subscribe to RTNLGRP_NSID: %w", err)
	}
	req, err := rawnl.Dial(unix.NETLINK_ROUTE)
	if err != nil {
		events.Close()
		return nil, err
	}
	return &nsidWatch{req: req, events: events}, nil
}

// Close closes the watch's sockets.
func (w *nsidWatch) Close() error {
	return errors.Join(w.req.Close(), w.events.Close())
}

// track gives the network namespace open as fd an nsid, so that its end
// can be seen.
func (w *nsidWatch) track(fd int, what string) (*watchedNetns, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat the namespace %s: %w", what, err)
	}
	n := &watchedNetns{what: what, name: fmt.Sprintf("net:[%d]", st.Ino)}
	// NETNSA_NSID -1: the kernel picks a free nsid.
	if _, err := w.exchange(unix.RTM_NEWNSID, rawnl.FlagRequest|rawnl.FlagAck, nsidAttrs(-1, fd)); err != nil {
		return nil, fmt.Errorf("RTM_NEWNSID for %s %s: %w", what, n.name, err)
	}
	m, err := w.exchange(unix.RTM_GETNSID, rawnl.FlagRequest, []netlink.Attribute{
		{Type: unix.NETNSA_FD, Data: s32(int32(fd))},
	})
	if err != nil {
		return nil, fmt.Errorf("RTM_GETNSID for %s %s: %w", what, n.name, err)
	}
	if n.nsid, err = parseNsid(m); err != nil {
		return nil, fmt.Errorf("RTM_GETNSID for %s %s: %w", what, n.name, err)
	}
	if n.nsid < 0 {
		return nil, fmt.Errorf("RTM_GETNSID for %s %s: nsid %d after RTM_NEWNSID was acked", what, n.name, n.nsid)
	}
	return n, nil
}

// exchange sends one request and returns its answer: the ack when the
// request asks for one, else the reply.
func (w *nsidWatch) exchange(typ uint16, flags uint16, attrs []netlink.Attribute) (rawnl.Message, error) {
	w.seq++
	b, err := nsidRequest(typ, flags, w.seq, attrs)
	if err != nil {
		return rawnl.Message{}, err
	}
	if err := w.req.Send(b); err != nil {
		return rawnl.Message{}, err
	}
	end := time.Now().Add(answerTimeout)
	for {
		msgs, err := w.req.ReceiveMessages(time.Until(end))
		if err != nil {
			return rawnl.Message{}, err
		}
		for _, m := range msgs {
			if m.Header.Seq != w.seq {
				continue
			}
			if errno, ok := m.Errno(); ok && (errno != 0 || flags&rawnl.FlagAck == 0) {
				return m, fmt.Errorf("kernel answered %w", unix.Errno(errno))
			}
			return m, nil
		}
	}
}

// waitFreed waits for n's RTM_DELNSID, at most bound after n.gone, and
// records how long after that it came. Call it for each namespace before
// the next is tracked, so that an nsid the kernel reuses is not mistaken
// for the one before.
func (w *nsidWatch) waitFreed(ctx context.Context, n *watchedNetns, bound time.Duration) error {
	end := n.gone.Add(bound)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	for {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		msgs, err := w.events.ReceiveMessages(left)
		if errors.Is(err, rawnl.ErrTimeout) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: RTNLGRP_NSID events: %w", n, err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_DELNSID {
				continue
			}
			nsid, err := parseNsid(m)
			if err != nil {
				return fmt.Errorf("RTM_DELNSID: %w", err)
			}
			if nsid == n.nsid {
				n.freed = max(time.Since(n.gone), time.Microsecond)
				return nil
			}
		}
	}
	return fmt.Errorf("%s was not freed within %s after its last process and socket were gone: no RTM_DELNSID for nsid %d, so something still holds a reference on it (a get_net() without put_net()?)",
		n, time.Since(n.gone).Round(time.Millisecond), n.nsid)
}
