package runresults

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/ktap"
)

func sample() *Run {
	return &Run{
		Schema: SchemaVersion,
		Date:   time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC),
		Source: "go test ./vmtests",
		Commit: "f365e0a",
		QEMU:   []string{"QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)"},
		Accel:  "tcg",
		Steps:  []string{"build", "boot", "insmod", "reply", "coverage", "kernel-log"},
		Targets: []Target{
			{Name: "6.1", Kernel: "6.1", Arch: "amd64", Release: "6.1.0-56-amd64", CPU: "qemu64", Guest: "restored", Status: StatusFail, Steps: []Step{
				{Name: "build", Status: StatusPass, Seconds: 3.1},
				{Name: "boot", Status: StatusPass, Seconds: 2},
				{Name: "insmod", Status: StatusPass, Seconds: 0.2},
				{Name: "reply", Status: StatusFail, Seconds: 2.01, Failure: []string{"reply: no reply within 2s", "kernel lines:", "BUG: kernel NULL pointer dereference, address: 0000000000000000"}},
				{Name: "coverage", Status: StatusSkip, SkipReason: "the kernel has no gcov"},
				{Name: "kernel-log", Status: StatusPass},
			}},
			{Name: "6.1 double-free", Kernel: "6.1", Fixture: "double-free", Status: StatusFail, Steps: []Step{{Name: "build", Status: StatusPass}, {Name: "reply", Status: StatusFail}}},
			{Name: "7.2", Kernel: "7.2", Release: "7.2.13+deb14-amd64", Status: StatusFail, Steps: []Step{
				{Name: "build", Status: StatusFail, Failure: []string{"error: implicit declaration of function 'netlink_kernel_create' | here"}},
			}},
		},
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Read(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("read back:\n%+v\nwant\n%+v", back, r)
	}
	data, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	// Field names are the schema: a rename breaks every reader.
	for _, f := range []string{`"schema": 1`, `"kmodtest_commit"`, `"qemu"`, `"accel"`, `"targets"`, `"release"`, `"guest": "restored"`, `"seconds": 2.01`, `"failure"`, `"skip_reason"`, `"fixture"`} {
		if !strings.Contains(string(data), f) {
			t.Errorf("results.json lacks %s:\n%s", f, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, KTAPFile)); err != nil {
		t.Errorf("no KTAP file: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"targets": []}`, "no schema version"},
		{`{"schema": 2}`, "schema version 2 is newer than this kmodtest reads (1): update kmodtest"},
		{`[1, 2]`, "want the results.json"},
	}
	for _, tt := range tests {
		if _, err := Decode([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%s) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}

// The KTAP file, parsed by the same parser the guest uses, gives back
// every target, step, status, skip reason and failure line.
func TestKTAPRoundTrip(t *testing.T) {
	r := sample()
	var b strings.Builder
	if err := r.WriteKTAP(&b); err != nil {
		t.Fatal(err)
	}
	d, err := ktap.Parse(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Problems) > 0 {
		t.Errorf("problems: %q\n%s", d.Problems, b.String())
	}
	if d.Version != ktap.Version1 {
		t.Errorf("version %q, want %q", d.Version, ktap.Version1)
	}
	var got []string
	d.Walk(func(path []string, tt *ktap.Test) {
		got = append(got, strings.Join(path, "/")+" "+tt.Status)
	})
	want := []string{
		"6.1 fail", "6.1/build pass", "6.1/boot pass", "6.1/insmod pass", "6.1/reply fail", "6.1/coverage skip", "6.1/kernel-log pass",
		"7.2 fail", "7.2/build fail",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tests (the fixture left out):\n got %q\nwant %q\n%s", got, want, b.String())
	}
	reply := d.Tests[0].Subtests[3]
	if !reflect.DeepEqual(reply.Diagnostics, r.Targets[0].Steps[3].Failure) {
		t.Errorf("reply's diagnostics %q, want the failure lines %q", reply.Diagnostics, r.Targets[0].Steps[3].Failure)
	}
	cov := d.Tests[0].Subtests[4]
	if cov.Directive != ktap.DirectiveSkip || cov.Reason != "the kernel has no gcov" {
		t.Errorf("coverage: directive %q reason %q, want SKIP and its reason", cov.Directive, cov.Reason)
	}
	if !strings.Contains(strings.Join(d.Tests[0].Diagnostics, "\n"), "release 6.1.0-56-amd64") {
		t.Errorf("6.1's diagnostics %q lack its release", d.Tests[0].Diagnostics)
	}
	if !strings.Contains(strings.Join(d.Diagnostics, "\n"), "QEMU emulator version 7.2.19") {
		t.Errorf("trailing diagnostics %q lack the QEMU version", d.Diagnostics)
	}
}

func TestMarkdown(t *testing.T) {
	got := sample().Markdown()
	want := "| kernel | release | build | boot | insmod | reply | coverage | kernel-log |\n" +
		"|---|---|---|---|---|---|---|---|\n" +
		"| 6.1 | `6.1.0-56-amd64` | pass | pass | pass | **fail** [1] | skip | pass |\n" +
		"| 7.2 | `7.2.13+deb14-amd64` | **fail** [2] | - | - | - | - | - |\n" +
		"\nTested by kmodtest f365e0a on 2026-12-07 05:00 UTC (go test ./vmtests, QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18), accelerator tcg); `-`: the step did not run.\n" +
		"\n[1] 6.1, reply: reply: no reply within 2s\n" +
		"\n[2] 7.2, build: error: implicit declaration of function 'netlink_kernel_create' \\| here\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMerge(t *testing.T) {
	a, b := sample(), sample()
	b.Targets = []Target{{Name: "5.10", Release: "5.10.0-32-amd64", Status: StatusPass, Steps: []Step{{Name: "build", Status: StatusPass}, {Name: "reload", Status: StatusPass}}}}
	b.Steps = []string{"build", "boot", "insmod", "reload", "kernel-log"}
	b.Date = a.Date.Add(time.Hour)
	b.Accel = "kvm"
	m := Merge(map[string]*Run{"shard-2-of-2": b, "shard-1-of-2": a})
	if m.Source != "kmodtest merge" || m.Accel != "mixed" || m.Commit != "f365e0a" || !m.Date.Equal(b.Date) {
		t.Errorf("metadata: source %q accel %q commit %q date %v", m.Source, m.Accel, m.Commit, m.Date)
	}
	if want := []string{"shard-1-of-2", "shard-2-of-2"}; !reflect.DeepEqual(m.Shards, want) {
		t.Errorf("shards %q, want %q", m.Shards, want)
	}
	var names []string
	for _, tg := range m.Targets {
		names = append(names, tg.Name+"@"+tg.Shard)
	}
	if want := []string{"5.10@shard-2-of-2", "6.1@shard-1-of-2", "6.1 double-free@shard-1-of-2", "7.2@shard-1-of-2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("targets %q, want %q", names, want)
	}
	// A step only one shard ran goes after the step before it there:
	// kernel-log stays last.
	if want := []string{"build", "boot", "insmod", "reload", "reply", "coverage", "kernel-log"}; !reflect.DeepEqual(m.Steps, want) {
		t.Errorf("steps %q, want %q", m.Steps, want)
	}
}

func TestFailureLines(t *testing.T) {
	var in []string
	for i := range 20 {
		in = append(in, "  line "+string(rune('a'+i))+"  ", "")
	}
	got := FailureLines(in)
	if len(got) != MaxFailureLines || got[0] != "line a" || got[MaxFailureLines-1] != "(9 more line(s): see the run's artifacts)" {
		t.Errorf("FailureLines: %q", got)
	}
}
