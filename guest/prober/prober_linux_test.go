package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/greet/rawnl"
)

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
	// The step checks the cap only if its text runs past it.
	if len(logText) <= greet.LogTextMax || !strings.Contains(logText[greet.LogTextMax:], "never logged") {
		t.Errorf("logText must run past the %d-byte cap: %q", greet.LogTextMax, logText)
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

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    contract.Config
		wantErr string
	}{
		{
			name: "defaults",
			path: write("min.json", `{"module_path": "/lib/modules/greet.ko"}`),
			want: contract.Config{ModulePath: "/lib/modules/greet.ko", ModuleName: greet.ModuleName, Protocol: greet.Protocol, Steps: contract.CoreSteps},
		},
		{
			name: "full",
			path: write("full.json", `{"module_path": "/m.ko", "module_name": "other", "protocol": 25, "steps": ["insmod", "leak"]}`),
			want: contract.Config{ModulePath: "/m.ko", ModuleName: "other", Protocol: 25, Steps: []string{"insmod", "leak"}},
		},
		{
			name:    "missing",
			path:    filepath.Join(dir, "nope.json"),
			want:    contract.Config{ModuleName: greet.ModuleName, Protocol: greet.Protocol, Steps: contract.CoreSteps},
			wantErr: "read config",
		},
		{
			name:    "bad JSON",
			path:    write("bad.json", `{"module_path": `),
			want:    contract.Config{ModuleName: greet.ModuleName, Protocol: greet.Protocol, Steps: contract.CoreSteps},
			wantErr: "decode config",
		},
		{
			name:    "no module",
			path:    write("empty.json", `{}`),
			want:    contract.Config{ModuleName: greet.ModuleName, Protocol: greet.Protocol, Steps: contract.CoreSteps},
			wantErr: "module_path is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(tt.path)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("unexpected error:\n- want: %q\n-  got: %v", tt.wantErr, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("unexpected config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEveryStepImplemented(t *testing.T) {
	for _, name := range contract.FullSteps {
		if _, ok := steps[name]; !ok {
			t.Errorf("step %q has no implementation", name)
		}
	}
	for name := range steps {
		if _, ok := contract.LookupStep(name); !ok {
			t.Errorf("step %q is implemented but not in the contract's step table", name)
		}
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

func TestDescribeRaw(t *testing.T) {
	const port = 4242
	msg := func(typ uint16, seq uint32, data []byte) rawnl.Message {
		return rawnl.Message{Header: rawnl.Header{Len: uint32(16 + len(data)), Type: typ, Seq: seq}, Data: data}
	}
	tests := []struct {
		name string
		m    rawnl.Message
		want string
	}{
		{name: "reply", m: msg(greet.TypeGreet, 7, greet.EncodeGreeting(greet.ReplyText(port))), want: "reply seq 7"},
		{name: "reply for another port", m: msg(greet.TypeGreet, 7, greet.EncodeGreeting(greet.ReplyText(1))),
			want: `reply seq 7 text "Msg from Process 1 has been processed by kernel" (want "Msg from Process 4242 has been processed by kernel")`},
		{name: "unterminated", m: msg(greet.TypeGreet, 7, []byte("x")), want: `reply seq 7 text "x" (not NUL-terminated)`},
		{name: "ack", m: msg(rawnl.TypeError, 8, greet.EncodeAck(0)), want: "ack seq 8 error 0"},
		{name: "EINVAL", m: msg(rawnl.TypeError, 9, greet.EncodeAck(22)), want: "ack seq 9 error -EINVAL"},
		{name: "short error", m: msg(rawnl.TypeError, 9, nil), want: "ack seq 9 with a 0-byte payload"},
		{name: "other", m: msg(3, 1, nil), want: "type 3 seq 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, describeRaw(tt.m, port)); diff != "" {
				t.Fatalf("unexpected description (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTally(t *testing.T) {
	const port = 9
	reply := func(seq uint32) rawnl.Message {
		return rawnl.Message{Header: rawnl.Header{Type: greet.TypeGreet, Seq: seq}, Data: greet.EncodeGreeting(greet.ReplyText(port))}
	}
	ack := func(seq uint32) rawnl.Message {
		return rawnl.Message{Header: rawnl.Header{Type: rawnl.TypeError, Seq: seq}, Data: greet.EncodeAck(0)}
	}
	tl := newTally()
	for _, m := range []rawnl.Message{reply(1), ack(1), reply(2), reply(2), ack(2), ack(3), ack(4)} {
		tl.add(m, port)
	}
	err := tl.check([]uint32{1, 2, 3})
	if err == nil {
		t.Fatal("check passed a broken exchange")
	}
	for _, want := range []string{"1 replies missing (seq 3)", "1 replies doubled (seq 2)", "answers with a sequence number never sent (seq 4)", "ack seq 3 before its reply"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check error %q lacks %q", err, want)
		}
	}
	good := newTally()
	good.add(reply(5), port)
	good.add(ack(5), port)
	if err := good.check([]uint32{5}); err != nil {
		t.Fatalf("check failed a good exchange: %v", err)
	}
}
