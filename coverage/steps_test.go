package coverage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// file is a one-file snapshot of m.c: counts by line 10, 11, 12, 20,
// and the two branch outcomes of line 11.
func file(l10, l11, l12, l20, b0, b1 int64) []File {
	return []File{{Name: "m.c", Source: "/src/m.c", Lines: []Line{
		{Number: 10, Count: l10},
		{Number: 11, Count: l11, Branches: []int64{b0, b1}},
		{Number: 12, Count: l12},
		{Number: 20, Count: l20},
	}}}
}

func TestSubtract(t *testing.T) {
	tests := []struct {
		name string
		in   []StepLines
		want []StepLines
	}{
		{
			name: "each step its own lines",
			in: []StepLines{
				{Step: "insmod", Files: file(1, 0, 0, 0, 0, 0)},
				{Step: "reply", Files: file(3, 2, 2, 0, 2, 0)},
				{Step: "rmmod", Files: file(3, 2, 2, 1, 2, 0)},
			},
			want: []StepLines{
				{Step: "insmod", Files: file(1, 0, 0, 0, 0, 0)},
				{Step: "reply", Files: file(2, 2, 2, 0, 2, 0)},
				{Step: "rmmod", Files: file(0, 0, 0, 1, 0, 0)},
			},
		},
		{
			name: "a step without a snapshot counts with the next",
			in: []StepLines{
				{Step: "insmod", Files: file(1, 0, 0, 0, 0, 0)},
				{Step: "reply", Missing: "failed"},
				{Step: "no-nul", Missing: "failed"},
				{Step: "rmmod", Files: file(3, 2, 2, 1, 1, 1)},
			},
			want: []StepLines{
				{Step: "insmod", Files: file(1, 0, 0, 0, 0, 0)},
				{Step: "reply", Missing: "failed"},
				{Step: "no-nul", Missing: "failed"},
				{Step: "rmmod", Earlier: []string{"reply", "no-nul"}, Files: file(2, 2, 2, 1, 1, 1)},
			},
		},
		{
			name: "no snapshot before the first or after the last",
			in: []StepLines{
				{Step: "insmod", Missing: "not loaded"},
				{Step: "reply", Files: file(2, 1, 1, 0, 1, 0)},
				{Step: "rmmod", Missing: "the prober stopped"},
			},
			want: []StepLines{
				{Step: "insmod", Missing: "not loaded"},
				{Step: "reply", Earlier: []string{"insmod"}, Files: file(2, 1, 1, 0, 1, 0)},
				{Step: "rmmod", Missing: "the prober stopped"},
			},
		},
		{
			name: "counts that fall restarted",
			in: []StepLines{
				{Step: "insmod", Files: file(5, 4, 4, 0, 4, 0)},
				{Step: "reload", Files: file(1, 0, 0, 1, 0, 0)},
			},
			want: []StepLines{
				{Step: "insmod", Files: file(5, 4, 4, 0, 4, 0)},
				{Step: "reload", Reset: true, Files: file(1, 0, 0, 1, 0, 0)},
			},
		},
		{
			name: "a branch count that falls restarted too",
			in: []StepLines{
				{Step: "a", Files: file(5, 4, 4, 0, 4, 0)},
				{Step: "b", Files: file(6, 5, 5, 0, 3, 2)},
			},
			want: []StepLines{
				{Step: "a", Files: file(5, 4, 4, 0, 4, 0)},
				{Step: "b", Reset: true, Files: file(6, 5, 5, 0, 3, 2)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Subtract(tt.in)); diff != "" {
				t.Errorf("unexpected steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRanges(t *testing.T) {
	lines := func(counts ...int64) []Line {
		var out []Line
		for i, c := range counts {
			out = append(out, Line{Number: []int{3, 4, 7, 8, 9, 15, 20}[i], Count: c})
		}
		return out
	}
	for _, tt := range []struct {
		in   []Line
		want string
	}{
		{lines(1, 1, 1, 1, 1, 1, 1), "3-20"},
		{lines(0, 0, 0, 0, 0, 0, 0), ""},
		{lines(1, 0, 2, 2, 0, 0, 9), "3, 7-8, 20"},
		{lines(0, 5, 1, 0, 0, 1, 1), "4-7, 15-20"},
	} {
		if got := ranges(tt.in); got != tt.want {
			t.Errorf("ranges(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestStepsOutputs checks the tracefile (one test per step, names as
// genhtml keeps them) and steps.txt, with a step that has no snapshot.
func TestStepsOutputs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	text := strings.Repeat("\n", 9) + "\tinit();\n\tif (x)\n\t\treply();\n" + strings.Repeat("\n", 7) + "\texit();\n"
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(fs []File) []File { fs[0].Source = src; return fs }
	s := &Steps{Steps: Subtract([]StepLines{
		{Step: "insmod", Files: at(file(1, 0, 0, 0, 0, 0))},
		{Step: "reply", Files: at(file(1, 3, 2, 0, 2, 1))},
		{Step: "no-reply-without-ack", Missing: "the step (fail) sent no gcov data"},
		{Step: "rmmod", Files: at(file(1, 4, 2, 1, 2, 2))},
		{Step: "socket-gone", Files: at(file(1, 4, 2, 1, 2, 2))},
		{Step: "coverage", Missing: "the step did not end: the prober or the guest stopped"},
	})}

	info := s.lcov()
	for _, want := range []string{
		"TN:insmod\nSF:" + src + "\nBRDA:11,0,0,-\nBRDA:11,0,1,-\nDA:10,1\nDA:11,0\nDA:12,0\nDA:20,0\nBRF:2\nBRH:0\nLF:4\nLH:1\nend_of_record\n",
		"TN:reply\nSF:" + src + "\nBRDA:11,0,0,2\nBRDA:11,0,1,1\nDA:10,0\nDA:11,3\nDA:12,2\nDA:20,0\nBRF:2\nBRH:2\nLF:4\nLH:2\nend_of_record\n",
		"TN:no_reply_without_ack_rmmod\nSF:" + src + "\nBRDA:11,0,0,0\nBRDA:11,0,1,1\nDA:10,0\nDA:11,1\nDA:12,0\nDA:20,1\n",
		"TN:socket_gone\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("tracefile lacks\n%s\ngot:\n%s", want, info)
		}
	}
	if strings.Contains(info, "TN:coverage") || strings.Count(info, "TN:") != 4 {
		t.Errorf("tracefile: want 4 tests (no coverage step), got:\n%s", info)
	}
	desc := s.descriptions()
	if want := "TN: no_reply_without_ack_rmmod\nTD: step rmmod, with the lines of no-reply-without-ack (no snapshot of their own)\n"; !strings.Contains(desc, want) {
		t.Errorf("descriptions lack %q:\n%s", want, desc)
	}

	got := s.text()
	for _, want := range []string{
		"insmod                m.c 10 (1 of 4 lines)\n",
		"reply                 m.c 11-12 (2 of 4 lines)\n",
		"no-reply-without-ack  no snapshot (the step (fail) sent no gcov data): its lines count for rmmod\n",
		"rmmod                 m.c 11, 20 (2 of 4 lines), with the lines of no-reply-without-ack (no snapshot)\n",
		"socket-gone           no line of the module\n",
		"coverage              no snapshot (the step did not end: the prober or the guest stopped), nor any later step: its lines are unknown\n",
		"m.c:10  init();\n    insmod\n",
		"m.c:11  if (x)\n    reply no-reply-without-ack+rmmod\n    branch 0: reply\n    branch 1: reply no-reply-without-ack+rmmod\n",
		"== Lines and branches only one step runs (that step alone guards them)\nm.c:10  insmod  init();\nm.c:11 branch 0  reply  if (x)\nm.c:12  reply  reply();\nm.c:20  no-reply-without-ack+rmmod  exit();\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("steps.txt lacks\n%s\ngot:\n%s", want, got)
		}
	}
}

// TestGenerateSteps runs the real gcov on two cumulative snapshots of a
// program built with --coverage, as the module is: gcov adds each run's
// counts to the .gcda, as the kernel does across steps.
func TestGenerateSteps(t *testing.T) {
	dir := buildProgram(t)
	var snaps []Snapshot
	for i, args := range [][]string{nil, {"x"}, {"x", "y"}} {
		snaps = append(snaps, Snapshot{Step: []string{"none", "one", "two"}[i], Gcda: map[string][]byte{"/g/m.gcda": runProgram(t, dir, args...)}})
	}
	snaps = append(snaps[:1], Snapshot{Step: "lost", Missing: "the step did not end"}, snaps[1], snaps[2])
	res, err := GenerateSteps(context.Background(), "gcov-12", dir, snaps, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := res.Step("one")
	if got := ranges(one.Files[0].Lines); got != "1-4, 8-10" || strings.Join(one.Earlier, ",") != "lost" {
		t.Errorf("step one ran %q (with %q), want 1-4, 8-10 (with lost)", got, one.Earlier)
	}
	two, _ := res.Step("two")
	if got := ranges(two.Files[0].Lines); got != "1-4, 8-10" {
		t.Errorf("step two ran %q, want 1-4, 8-10", got)
	}
	for _, l := range two.Files[0].Lines {
		if l.Count > 1 {
			t.Errorf("step two ran line %d %d times, want once (counts not subtracted?)", l.Number, l.Count)
		}
	}
	text, err := os.ReadFile(res.Text)
	if err != nil {
		t.Fatal(err)
	}
	if want := "m.c:5  return 3;\n    none\n"; !strings.Contains(string(text), want) {
		t.Errorf("steps.txt lacks %q:\n%s", want, text)
	}
	if res.HTML != "" {
		if _, err := os.Stat(res.HTML); err != nil {
			t.Errorf("HTML page: %v", err)
		}
	} else if _, err := exec.LookPath("genhtml"); err == nil {
		t.Errorf("genhtml is installed but made no page: %s", res.HTMLNote)
	}
}

func TestStepList(t *testing.T) {
	all := []string{"insmod", "reply", "ack", "rmmod", "coverage"}
	for _, tt := range []struct {
		some []string
		want string
	}{
		{nil, "never"},
		{[]string{"reply"}, "reply"},
		{[]string{"reply", "ack"}, "reply ack"},
		{[]string{"insmod", "reply", "ack"}, "every step but rmmod coverage"},
		{all, "every step"},
	} {
		if got := stepList(tt.some, all); got != tt.want {
			t.Errorf("stepList(%q) = %q, want %q", tt.some, got, tt.want)
		}
	}
}
