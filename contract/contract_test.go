package contract

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet"
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

// TestSilenceLimit: the host's silence limit is above every step's
// timeout plus the prober's grace, at every slowdown, so that a slow step
// is reported by the prober and not as a hang; and it is the 90 s the
// stock kernels have always had.
func TestSilenceLimit(t *testing.T) {
	if got := SilenceLimit(1); got != 90*time.Second {
		t.Errorf("SilenceLimit(1) = %s, want 90s", got)
	}
	for _, slowdown := range []int{0, 1, 2, 3, 5} {
		limit := SilenceLimit(slowdown)
		for _, s := range Steps {
			if s.Progress {
				continue // its progress lines keep the prober from falling silent
			}
			if need := StepTimeout(s.Name, slowdown) + StepGrace; limit <= need {
				t.Errorf("slowdown %d: silence limit %s is not above step %s's timeout and grace (%s)", slowdown, limit, s.Name, need)
			}
		}
	}
}

// TestStepTable: every step has a timeout, names are unique, the core
// steps are in the table, and the expected log lines name the module.
func TestStepTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Steps {
		if s.Timeout <= 0 {
			t.Errorf("step %s has no timeout", s.Name)
		}
		if seen[s.Name] {
			t.Errorf("step %s twice in the table", s.Name)
		}
		seen[s.Name] = true
	}
	for _, s := range CoreSteps {
		if !seen[s] {
			t.Errorf("core step %s is not in the table", s)
		}
	}
	if got, want := StepTimeout(StepLeak, 3), 180*time.Second; got != want {
		t.Errorf("StepTimeout(leak, 3) = %s, want %s", got, want)
	}
	logs := ExpectedLogs()
	for _, step := range []string{StepInsmod, StepRmmod, StepModuleParam} {
		if !strings.HasPrefix(logs[step], greet.ModuleName+": ") {
			t.Errorf("expected log of %s = %q, want the module's line", step, logs[step])
		}
	}
}
