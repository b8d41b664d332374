package contract

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEventRoundTrip(t *testing.T) {
	want := Event{Kind: KindEnd, Step: StepReply, Status: StatusFail, Detail: "no reply", Kmsg: []string{"a", "b"}, TaintBefore: 4096, TaintAfter: 4608, DurationMS: 12}
	line, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := ParseLine(line)
	if !ok || err != nil {
		t.Fatalf("ParseLine(%q) = ok %v, err %v", line, ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected event (-want +got):\n%s", diff)
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		ok      bool
		wantErr bool
	}{
		{name: "noise", line: "Run /init as init process", ok: false},
		{name: "event with CRLF", line: `KMODTEST {"kind":"done"}` + "\r\n", ok: true},
		{name: "event after garbage", line: "\x00\x1b[0m" + `KMODTEST {"kind":"begin","step":"insmod"}`, ok: true},
		{name: "cut short by a panic", line: `KMODTEST {"kind":"end","st`, ok: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := ParseLine([]byte(tt.line))
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Errorf("ParseLine(%q) = ok %v, err %v; want ok %v, error %v", tt.line, ok, err, tt.ok, tt.wantErr)
			}
		})
	}
}

func TestNeedsModule(t *testing.T) {
	for _, step := range FullSteps {
		if got, want := NeedsModule(step), step != StepInsmod; got != want {
			t.Errorf("NeedsModule(%s) = %v, want %v", step, got, want)
		}
	}
}
