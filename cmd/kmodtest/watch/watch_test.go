package watch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/internal/testenv"
)

// TestWatch edits a scratch copy of the module and sees the verdict go
// from pass to fail (a fixture's bug), to a build error, and back to pass.
func TestWatch(t *testing.T) {
	repo, src, file, good := scratchModule(t)
	s, err := harness.NewSession(t.Context(), harness.Options{Kernels: "6.1", ArtifactsDir: t.TempDir()}, repo, t.Logf)
	if err != nil {
		t.Fatal(err)
	}

	// Each round's check, then the edit that makes the next round.
	type stage struct {
		name  string
		check func(r Round) string
		edit  func() error
	}
	patch := func() error {
		out, err := exec.Command("patch", "-p1", "-d", src, "-i", filepath.Join(src, "fixtures", "no-reply.patch")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("patch: %v: %s", err, out)
		}
		return nil
	}
	stages := []stage{
		{"pass", wantPass, patch},
		{"fixture no-reply fails reply", wantStepFail(contract.StepReply), func() error {
			return os.WriteFile(file, append(good, []byte("\nthis is not C;\n")...), 0o644)
		}},
		{"build error", wantBuildError, func() error { return os.WriteFile(file, good, 0o644) }},
		{"pass again", wantPass, nil},
	}
	var mu sync.Mutex
	var problems []string
	var out bytes.Buffer
	err = Run(t.Context(), Options{Session: s, Src: src, Out: &out, Rounds: len(stages), OnRound: func(r Round) {
		st := stages[r.N-1]
		t.Logf("round %d (%s): passed=%v in %.1fs", r.N, st.name, r.Passed(), r.Total.Seconds())
		if p := st.check(r); p != "" {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("round %d (%s): %s", r.N, st.name, p))
			mu.Unlock()
		}
		if st.edit != nil {
			// A save within the same second must still count.
			time.Sleep(10 * time.Millisecond)
			if err := st.edit(); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() {
		t.Logf("watch output:\n%s", out.String())
	}
	for _, want := range []string{"round 1: PASS", "round 2: FAIL", "step reply failed", "this is not C", "round 4: PASS", "qemu-stderr.log"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("watch output lacks %q", want)
		}
	}
	// A restored run has no initramfs.cpio or rerun.sh of its own: the
	// failure text must not send the reader looking for them.
	for _, absent := range []string{"initramfs.cpio", "rerun.sh"} {
		if strings.Contains(out.String(), absent) {
			t.Errorf("watch output names %s, which a watch run does not have", absent)
		}
	}
}

// scratchModule skips unless VM tests of the tools are on, and returns
// the repository, a scratch copy of its kmod/, the module's source in it
// and that source's content.
func scratchModule(t testing.TB) (repo, src, file string, good []byte) {
	t.Helper()
	testenv.NeedVMs(t)
	repo = testenv.RepoRoot(t)
	src = filepath.Join(t.TempDir(), "kmod")
	if out, err := exec.Command("cp", "-r", filepath.Join(repo, "kmod"), src).CombinedOutput(); err != nil {
		t.Fatalf("copy kmod: %v: %s", err, out)
	}
	file = filepath.Join(src, "NetlinkGreetingsLKM.c")
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return repo, src, file, good
}

func wantPass(r Round) string {
	if !r.Passed() {
		return "want every step to pass, got a failure"
	}
	return ""
}

func wantStepFail(step string) func(Round) string {
	return func(r Round) string {
		for _, t := range r.Targets {
			if t.Report == nil {
				return fmt.Sprintf("want step %s to fail, got no verdict (%v)", step, t.BuildErr)
			}
			s, ok := t.Report.Step(step)
			if !ok || !s.Failed() {
				return fmt.Sprintf("want step %s to fail, got %+v", step, s.Status)
			}
		}
		return ""
	}
}

func wantBuildError(r Round) string {
	for _, t := range r.Targets {
		if t.BuildErr == nil || !strings.Contains(t.BuildErr.Error(), "error:") {
			return fmt.Sprintf("want a build error quoting the compiler, got %v", t.BuildErr)
		}
	}
	return ""
}

// TestWatchStopsARoundOnSave saves a module whose insmod takes 60 s, then,
// while that round runs, saves the good module again: the slow round must
// stop at once (its guest killed) and the next round test the good one.
func TestWatchStopsARoundOnSave(t *testing.T) {
	repo, src, file, good := scratchModule(t)
	slow := strings.Replace(string(good), "\tpr_info(\"loaded,", "\tmsleep(60000);\n\tpr_info(\"loaded,", 1)
	slow = strings.Replace(slow, "#include <linux/kernel.h>", "#include <linux/delay.h>\n#include <linux/kernel.h>", 1)
	if slow == string(good) {
		t.Fatal("the slow edit did not apply: the module's load line moved")
	}
	s, err := harness.NewSession(t.Context(), harness.Options{Kernels: "6.1", ArtifactsDir: t.TempDir()}, repo, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var rounds []Round
	var slowStart time.Time
	err = Run(t.Context(), Options{Session: s, Src: src, Out: &out, Rounds: 3,
		OnRound: func(r Round) {
			rounds = append(rounds, r)
			if r.N == 1 {
				time.Sleep(10 * time.Millisecond)
				if err := os.WriteFile(file, []byte(slow), 0o644); err != nil {
					t.Error(err)
				}
			}
		},
		OnStart: func(n int) {
			if n != 2 {
				return
			}
			slowStart = time.Now()
			go func() {
				// Long enough for the build and the restore to be
				// under way, far from the 60 s insmod.
				time.Sleep(3 * time.Second)
				if err := os.WriteFile(file, good, 0o644); err != nil {
					t.Error(err)
				}
			}()
		}})
	if err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	if len(rounds) != 2 || rounds[0].N != 1 || rounds[1].N != 3 || !rounds[1].Passed() {
		t.Errorf("want rounds 1 and 3 to finish and 3 to pass, got %d finished rounds", len(rounds))
	}
	if took := time.Since(slowStart); took > 45*time.Second {
		t.Errorf("round 2 and 3 took %s: the slow round was not stopped", took)
	}
	if !strings.Contains(out.String(), "round 2: stopped, the source changed") {
		t.Errorf("watch output does not say that round 2 stopped:\n%s", out.String())
	}
	t.Logf("watch output:\n%s", out.String())
}
