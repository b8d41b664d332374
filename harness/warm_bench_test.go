package harness

import (
	"github.com/kmodtest/kmodtest/contract"
	"path/filepath"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

// BenchmarkBootVsRestore measures one run of the core steps on 6.1 by a
// boot (go test's way) and by restoring a saved guest (kmodtest watch's),
// from QEMU's start to the guest's power-off, the module already built:
//
//	go test ./harness -run '^$' -bench BootVsRestore -benchtime 5x
func BenchmarkBootVsRestore(b *testing.B) {
	testenv.NeedVMs(b)
	ctx := b.Context()
	s, err := NewSession(ctx, Options{Kernels: "6.1", ArtifactsDir: b.TempDir()}, "..", b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	tg := s.Targets[0]
	p := s.Prepare(ctx, tg.Kernel, "")
	if err := p.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	base, err := s.BaseImageFor(tg.Kernel.Arch)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := PrepareSnapshot(ctx, s.Cache, tg, p.Image, p.Port, base.Path, s.AccelFor(tg), b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, r *Result) {
		if st, failed := r.Report.FirstFailure(); failed {
			b.Fatalf("step %s failed: %v", st.Name, st.Reasons)
		}
	}
	b.Run("boot", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			bt := Boot{Target: tg, Kernel: p.Kernel, Image: p.Image, Ko: p.Module.Ko, Base: base.Path,
				Steps: s.Steps, Dir: filepath.Join(b.TempDir(), "boot"), Accel: s.Accel}
			res, err := bt.Run(ctx)
			if err != nil {
				b.Fatal(err)
			}
			check(b, res)
		}
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			wr, err := snap.Start(ctx, filepath.Join(b.TempDir(), "restore"), 0)
			if err != nil {
				b.Fatal(err)
			}
			res, err := wr.Finish(ctx, p.Module.Ko, contract.Job{Steps: s.Steps})
			if err != nil {
				b.Fatal(err)
			}
			check(b, res)
		}
	})
}
