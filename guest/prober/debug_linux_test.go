package main

import (
	"strings"
	"testing"
)

const kmemleakReport = `unreferenced object 0xffff888005a1c340 (size 64):
  comm "prober", pid 61, jiffies 4294902160
  hex dump (first 32 bytes):
    48 65 6c 6c 6f 00 00 00 00 00 00 00 00 00 00 00  Hello...........
  backtrace (crc 5c3b1d3f):
    [<ffffffff8137e2b5>] __kmalloc_noprof+0x1c5/0x3f0
    [<ffffffffa0002101>] greet_msg+0x101/0x2b0 [NetlinkGreetingsLKM]
    [<ffffffff81b2c0d2>] netlink_unicast+0x3b2/0x560
unreferenced object 0xffff888004c0e000 (size 32):
  comm "swapper/0", pid 1, jiffies 4294892160
  backtrace (crc 0):
    [<ffffffff8137e2b5>] __kmalloc_noprof+0x1c5/0x3f0
    [<ffffffff81f0a0a0>] acpi_os_allocate+0x10/0x20
unreferenced object 0xffff888004c0f000 (size 32):
  comm "prober", pid 70, jiffies 4294992160
  backtrace (crc 0):
    [<ffffffff8137e2b5>] __kmalloc_noprof+0x1c5/0x3f0
    [<ffffffffa0004101>] 0xffffffffa0004101
`

func TestModuleLeaks(t *testing.T) {
	leaks := moduleLeaks(kmemleakReport, "NetlinkGreetingsLKM")
	if len(leaks) != 2 {
		t.Fatalf("want 2 leaks of the module (one named, one in unloaded code), got %d: %q", len(leaks), leaks)
	}
	if !strings.Contains(leaks[0], "greet_msg") || !strings.Contains(leaks[1], "0xffffffffa0004101") {
		t.Errorf("wrong leaks picked: %q", leaks)
	}
	if got := moduleLeaks("", "NetlinkGreetingsLKM"); len(got) != 0 {
		t.Errorf("empty report: got %q", got)
	}
	if err := leakError(leaks); !strings.Contains(err.Error(), "2 unreferenced") || !strings.Contains(err.Error(), "greet_msg+0x101") {
		t.Errorf("leakError does not quote the backtrace: %v", err)
	}
}

func TestAllowedOutcome(t *testing.T) {
	full := replyAck(7)
	for _, tc := range []struct {
		full, got []string
		want      string // outcome, or "" for a violation
	}{
		{full, full, "full"},
		{full, nil, "nothing"},
		{full, full[:1], "partial"},
		{full, errAck(7, "ENOMEM"), "error ack"},
		{full, ackOnly(7), ""},            // success ack without its reply
		{full, append(full, full...), ""}, // doubled
		{full, []string{"ack seq 7 error 0", "reply seq 7"}, ""},
		{nil, nil, "nothing"},
		{nil, errAck(7, "ENOMEM"), ""},                 // nothing promised, something sent
		{errAck(7, "EINVAL"), errAck(7, "ENOMEM"), ""}, // the error changed
		{errAck(7, "EINVAL"), nil, "nothing"},
		{ackOnly(7), ackOnly(7), "full"},
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
