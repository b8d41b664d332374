package watch

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/harness"
)

var benchKernels = flag.String("watch-kernels", "6.1", "the kernels BenchmarkSaveToVerdict watches")

// BenchmarkSaveToVerdict measures what a module author waits for: from a
// save (the file's time stamp) to the printed verdict, one round per
// save, and splits it into the parts that add up to it. Each metric is
// the median over the rounds (the first round, before any save, is left
// out):
//
//   - detect: save to the round's start (the source is polled every 50 ms)
//
//   - build: the module build (Kbuild's recorded commands replayed)
//
//   - wait: build end to the prober's first event (the rest of the
//     restore, which overlaps the build, and the transfer)
//
//   - steps: the steps
//
//   - other: the rest (judging, printing; with several kernels, the
//     slowest target sets build+wait+steps)
//
//     KMODTEST_TOOL_TESTS=1 go test ./cmd/kmodtest/watch -run '^$' -bench SaveToVerdict -benchtime 7x [-watch-kernels 5.10,6.1]
func BenchmarkSaveToVerdict(b *testing.B) {
	repo, src, file, good := scratchModule(b)
	s, err := harness.NewSession(b.Context(), harness.Options{Kernels: *benchKernels, ArtifactsDir: b.TempDir()}, repo, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	var starts []time.Time
	var rounds []Round
	saves := 0
	err = Run(b.Context(), Options{
		Session: s, Src: src, Out: &out, Rounds: b.N + 1,
		OnStart: func(int) { starts = append(starts, time.Now()) },
		OnRound: func(r Round) {
			if !r.Passed() {
				b.Errorf("round %d failed:\n%s", r.N, out.String())
			}
			rounds = append(rounds, r)
			// Time stamps have nanoseconds, but wait so that no two
			// saves share one on a coarse file system.
			time.Sleep(20 * time.Millisecond)
			saves++
			edit := fmt.Appendf(slices.Clone(good), "\n/* save %d */\n", saves)
			if err := os.WriteFile(file, edit, 0o644); err != nil {
				b.Error(err)
			}
		},
	})
	if err != nil {
		b.Fatalf("watch: %v\n%s", err, out.String())
	}
	if len(rounds) < 2 || len(starts) != len(rounds) {
		b.Fatalf("%d rounds, %d starts: want %d of each", len(rounds), len(starts), b.N+1)
	}
	var total, detect, build, wait, steps, other []float64
	for i, r := range rounds[1:] {
		d := starts[i+1].Sub(r.Trigger)
		var slowest, bld, wt, st time.Duration
		for _, t := range r.Targets {
			if sum := t.Build + t.Wait + t.StepsDuration; sum > slowest {
				slowest, bld, wt, st = sum, t.Build, t.Wait, t.StepsDuration
			}
		}
		total = append(total, r.Total.Seconds())
		detect = append(detect, d.Seconds())
		build = append(build, bld.Seconds())
		wait = append(wait, wt.Seconds())
		steps = append(steps, st.Seconds())
		other = append(other, (r.Total - d - slowest).Seconds())
	}
	b.ReportMetric(median(total)*1e9, "ns/op")
	b.ReportMetric(median(detect), "detect-s")
	b.ReportMetric(median(build), "build-s")
	b.ReportMetric(median(wait), "wait-s")
	b.ReportMetric(median(steps), "steps-s")
	b.ReportMetric(median(other), "other-s")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
