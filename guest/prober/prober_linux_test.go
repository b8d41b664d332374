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

// TestLogTextRunsPastTheCap: the greeting-log step checks the module's
// cap only if its text runs past it.
func TestLogTextRunsPastTheCap(t *testing.T) {
	// The step checks the cap only if its text runs past it.
	if len(logText) <= greet.LogTextMax || !strings.Contains(logText[greet.LogTextMax:], "never logged") {
		t.Errorf("logText must run past the %d-byte cap: %q", greet.LogTextMax, logText)
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

func TestTally(t *testing.T) {
	const port = 9
	reply := func(seq uint32) rawnl.Message {
		return greet.ExpectedReply(seq, port)
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
	multi := newTally()
	m := reply(6)
	m.Header.Flags = rawnl.FlagMulti
	multi.add(m, port)
	multi.add(ack(6), port)
	if err := multi.check([]uint32{6}); err == nil || !strings.Contains(err.Error(), "reply flags 0x2 (NLM_F_MULTI), want 0") {
		t.Errorf("check of a reply with NLM_F_MULTI: got %v, want the flags named", err)
	}
	good := newTally()
	good.add(reply(5), port)
	good.add(ack(5), port)
	if err := good.check([]uint32{5}); err != nil {
		t.Fatalf("check failed a good exchange: %v", err)
	}
}
