// Package greet speaks the netlink greeting protocol of the
// NetlinkGreetingsLKM kernel module.
//
// # Protocol
//
// The module listens on netlink protocol Protocol (31 unless its module
// parameter protocol says otherwise). A greeting is a message of type
// TypeGreet whose payload holds the text up to its first NUL byte, or the
// whole payload if there is none; the text must be 1 to MaxText bytes.
//
// For every greeting that carries NLM_F_ACK the module answers the sender's
// real netlink port, in order, with a reply (type TypeGreet, the greeting's
// sequence number and the NUL-terminated text ReplyText(port)) and a
// standard acknowledgement (NLMSG_ERROR with error 0). Without NLM_F_ACK it
// sends nothing back. Invalid greetings are answered with -EINVAL and other
// message types of NLMSG_MIN_TYPE or above with -EOPNOTSUPP, with or without
// NLM_F_ACK.
//
// # Clients
//
// A Client is built on github.com/mdlayher/netlink. Because the module
// answers one greeting with two datagrams, a Client sends with Conn.Send and
// receives until both answers arrived, instead of using Conn.Execute (which
// reads one datagram and would leave the ack queued).
//
// Package rawnl, below this one, opens raw netlink sockets for input that
// mdlayher/netlink refuses to build: short datagrams, lying lengths and
// several messages in one datagram.
package greet
