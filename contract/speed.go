package contract

import (
	"fmt"
	"slices"
	"time"
)

// RoundTripCount is how many round trips of each kind the round-trip
// step times, after RoundTripWarmup untimed ones: enough for a steady
// median and a 99th percentile of three samples.
const (
	RoundTripCount  = 300
	RoundTripWarmup = 20
)

// RoundTripFactor is how many times slower than the kernel's own round
// trip the module's median may be before the round-trip step fails. The
// real module measured 1.03 to 1.14 times the kernel's on 5.10, 6.1, 6.12
// and 7.3 under TCG at loads of 2 to 25, and 1.03 on 6.12-debug; the
// slow-ack fixture (2 ms of sleep per acked greeting) 22 to 63 times on
// 6.1, and about 5 times on 6.12-debug, whose own round trip is 0.5 ms
// (docs/performance.md).
const RoundTripFactor = 4

// RoundTrips is the round-trip step's measurement, sent to the host with
// the step's end event and kept in timings.json, so that two runs can be
// compared (kmodtest compare).
type RoundTrips struct {
	// Count is how many round trips of each kind were timed.
	Count int `json:"count"`
	// Module is a greeting with NLM_F_ACK: send until its ack arrived,
	// reply and ack checked whole.
	Module Latency `json:"module"`
	// Kernel is the reference the kernel serves itself on a netlink
	// socket (Reference says which), timed the same way.
	Kernel    Latency `json:"kernel"`
	Reference string  `json:"reference"`
}

// Latency is the median and 99th percentile of a set of round trips, in
// nanoseconds.
type Latency struct {
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
}

// NewLatency returns the median and 99th percentile of samples (nearest
// rank). It sorts samples.
func NewLatency(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	rank := func(p int) time.Duration {
		i := (len(samples)*p + 99) / 100 // nearest rank, 1-based
		return samples[max(i, 1)-1]
	}
	return Latency{MedianNS: int64(rank(50)), P99NS: int64(rank(99))}
}

// Ratio is the module's median over the kernel's: how many times slower
// the module answers. It is 0 when the kernel's median is 0.
func (r RoundTrips) Ratio() float64 {
	if r.Kernel.MedianNS <= 0 {
		return 0
	}
	return float64(r.Module.MedianNS) / float64(r.Kernel.MedianNS)
}

// TooSlow reports whether the module's median exceeds RoundTripFactor
// times the kernel's.
func (r RoundTrips) TooSlow() bool {
	return r.Module.MedianNS > RoundTripFactor*r.Kernel.MedianNS
}

// String gives both medians, both 99th percentiles and the ratio.
func (r RoundTrips) String() string {
	return fmt.Sprintf("%d round trips: module median %s, p99 %s; kernel (%s) median %s, p99 %s; ratio %.2f",
		r.Count, us(r.Module.MedianNS), us(r.Module.P99NS), r.Reference, us(r.Kernel.MedianNS), us(r.Kernel.P99NS), r.Ratio())
}

// us formats nanoseconds as microseconds.
func us(ns int64) string { return fmt.Sprintf("%.0f µs", float64(ns)/1000) }
