package kernelio

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	objs, err := ParseKmemleak(kmemleakReport)
	if err != nil {
		t.Fatal(err)
	}
	var leaks []string
	for _, o := range objs {
		if o.FromModule("NetlinkGreetingsLKM") {
			leaks = append(leaks, o.Record)
		}
	}
	if len(leaks) != 2 {
		t.Fatalf("want 2 leaks of the module (one named, one in unloaded code), got %d: %q", len(leaks), leaks)
	}
	if !strings.Contains(leaks[0], "greet_msg") || !strings.Contains(leaks[1], "0xffffffffa0004101") {
		t.Errorf("wrong leaks picked: %q", leaks)
	}
	if got, err := ParseKmemleak(""); len(got) != 0 || err != nil {
		t.Errorf("empty report: got %v, %v", got, err)
	}
	if err := LeakError(leaks); !strings.Contains(err.Error(), "2 unreferenced") || !strings.Contains(err.Error(), "greet_msg+0x101") {
		t.Errorf("LeakError does not quote the backtrace: %v", err)
	}
}

func TestParseKmsgRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    kmsgRecord
		wantErr bool
	}{
		{
			name: "plain",
			in:   "6,1234,5678901,-;NetlinkGreetingsLKM: loaded\n",
			want: kmsgRecord{Level: 6, Seq: 1234, Text: "NetlinkGreetingsLKM: loaded"},
		},
		{
			name: "facility and continuation lines",
			in:   "11,77,100,-,caller=T1;BUG: kernel NULL pointer dereference\n SUBSYSTEM=net\n DEVICE=+x\n",
			want: kmsgRecord{Level: 3, Seq: 77, Text: "BUG: kernel NULL pointer dereference"},
		},
		{
			name: "semicolon in text",
			in:   "4,1,1,c;a;b\n",
			want: kmsgRecord{Level: 4, Seq: 1, Text: "a;b"},
		},
		{name: "no semicolon", in: "garbage\n", wantErr: true},
		{name: "bad prio", in: "x,1,1,-;text\n", wantErr: true},
		{name: "short prefix", in: "6,1;text\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKmsgRecord([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnescapeKmsg(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":                         "plain text",
		`log\x09tab \x1b\x5c001 caf\xc3\xa9`: "log\ttab \x1b\\001 caf\xc3\xa9",
		`half \x4`:                           `half \x4`,
		`not hex \xzz`:                       `not hex \xzz`,
	} {
		if got := string(unescapeKmsg(in)); got != want {
			t.Errorf("unescapeKmsg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKmsgLogCaps(t *testing.T) {
	var l kmsgLog
	for i := range 12000 {
		level := 6
		if i%100 == 0 {
			level = 3
		}
		l.add(kmsgRecord{Level: level, Text: "line"})
	}
	l.lost = 1
	got := l.result()
	// 100 head lines, then the errors among the remaining 11,900 (119),
	// then two notes.
	if want := kmsgHead + 119 + 2; len(got) != want {
		t.Fatalf("lines: want %d, got %d", want, len(got))
	}
	if !strings.Contains(got[len(got)-2], "11781 more kmsg lines not shown (0 of them warnings") {
		t.Fatalf("unexpected omission note %q", got[len(got)-2])
	}

	var flood kmsgLog
	for range 12000 {
		flood.add(kmsgRecord{Level: 3, Text: "BUG"})
	}
	if got := flood.result(); len(got) != kmsgMax+1 {
		t.Fatalf("lines of an all-error flood: want %d, got %d", kmsgMax+1, len(got))
	}
}

func TestParseMeminfo(t *testing.T) {
	in := []byte("MemTotal:        1000 kB\nSReclaimable:     200 kB\nSUnreclaim:      31337 kB\n")
	got, err := parseMeminfo(in, "SUnreclaim")
	if err != nil || got != 31337 {
		t.Fatalf("parseMeminfo: want 31337, got %d (%v)", got, err)
	}
	if _, err := parseMeminfo(in, "Slab"); err == nil {
		t.Fatal("parseMeminfo found a missing key")
	}
}
