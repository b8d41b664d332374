// Package rawgreet sends greetings to the module over a raw netlink
// socket, byte by byte as the steps choose them: a [Session] with its
// own sequence numbers, the sentinel exchange that tells "no answer"
// from "not yet", and the hostile inputs of the prober's steps (short
// datagrams, lying lengths, empty and oversized texts, control and
// unknown types, batches, spoofed port ids), each with the answers the
// protocol promises.
//
// It is apart from guest/prober because the cases are data about the
// protocol, not about running a step: the prober's hostile steps only
// open a session and run the cases of their name.
package rawgreet
