package contract

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewLatency(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{name: "none", want: Latency{}},
		{name: "one", samples: []time.Duration{7}, want: Latency{MedianNS: 7, P99NS: 7}},
		{name: "unsorted", samples: []time.Duration{5, 1, 4, 2, 3}, want: Latency{MedianNS: 3, P99NS: 5}},
		// Nearest rank over 300: the 150th and the 297th.
		{name: "300", samples: seq(300), want: Latency{MedianNS: 150, P99NS: 297}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, NewLatency(tt.samples)); diff != "" {
				t.Errorf("unexpected latency (-want +got):\n%s", diff)
			}
		})
	}
}

// seq returns 300, 299, ... 1 ns.
func seq(n int) []time.Duration {
	var s []time.Duration
	for i := n; i > 0; i-- {
		s = append(s, time.Duration(i))
	}
	return s
}

func TestRoundTripsTooSlow(t *testing.T) {
	rt := RoundTrips{Count: 300, Module: Latency{MedianNS: 2_600_000, P99NS: 3_000_000}, Kernel: Latency{MedianNS: 25_000, P99NS: 200_000}, Reference: "rtnetlink"}
	if !rt.TooSlow() {
		t.Errorf("TooSlow() = false for ratio %.1f, want true", rt.Ratio())
	}
	if got, want := rt.String(), "module median 2600 µs, p99 3000 µs; kernel (rtnetlink) median 25 µs, p99 200 µs; ratio 104.00"; !strings.Contains(got, want) {
		t.Errorf("String() = %q, want it to hold %q", got, want)
	}
	rt.Module.MedianNS = RoundTripFactor * rt.Kernel.MedianNS
	if rt.TooSlow() {
		t.Errorf("TooSlow() = true at exactly %d times the kernel's median, want false", RoundTripFactor)
	}
	if (RoundTrips{}).Ratio() != 0 {
		t.Errorf("Ratio() of no measurement is not 0")
	}
}
