package main

import (
	"testing"

	"github.com/kmodtest/kmodtest/guest/rawgreet"
)

func TestAllowedOutcome(t *testing.T) {
	full := rawgreet.ReplyAck(7)
	for _, tc := range []struct {
		full, got []string
		want      string // outcome, or "" for a violation
	}{
		{full, full, "full"},
		{full, nil, "nothing"},
		{full, full[:1], "partial"},
		{full, rawgreet.ErrAck(7, "ENOMEM"), "error ack"},
		{full, rawgreet.AckOnly(7), ""},   // success ack without its reply
		{full, append(full, full...), ""}, // doubled
		{full, []string{"ack seq 7 error 0", "reply seq 7"}, ""},
		{nil, nil, "nothing"},
		{nil, rawgreet.ErrAck(7, "ENOMEM"), ""},                          // nothing promised, something sent
		{rawgreet.ErrAck(7, "EINVAL"), rawgreet.ErrAck(7, "ENOMEM"), ""}, // the error changed
		{rawgreet.ErrAck(7, "EINVAL"), nil, "nothing"},
		{rawgreet.AckOnly(7), rawgreet.AckOnly(7), "full"},
	} {
		got, err := allowedOutcome(tc.full, tc.got)
		if tc.want == "" {
			if err == nil {
				t.Errorf("full %q got %q: want a violation, got outcome %q", tc.full, tc.got, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("full %q got %q: want %q, got %q, %v", tc.full, tc.got, tc.want, got, err)
		}
	}
}
