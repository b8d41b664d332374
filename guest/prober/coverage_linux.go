package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kmodtest/kmodtest/guest/kernelio"
)

// gcovCost is what the per-step snapshots cost so far: how many were
// sent, their bytes and the time spent reading them.
type gcovCost struct {
	snapshots, bytes int
	time             time.Duration
}

func (c gcovCost) String() string {
	return fmt.Sprintf("%d step snapshots before this one, %d bytes, read in %d ms", c.snapshots, c.bytes, c.time.Milliseconds())
}

// gcovSnapshot returns the module's gcov data as it stands, to send
// with the end of a step (Config.GcovSnapshots): the counts are
// cumulative, so the host subtracts the previous step's. It returns nil
// while the module has no data (never loaded yet).
func (p *prober) gcovSnapshot() (map[string][]byte, error) {
	start := time.Now()
	if err := kernelio.MountDebugfs(); err != nil {
		return nil, fmt.Errorf("gcov snapshot: %w", err)
	}
	files, err := kernelio.GcovData(p.cfg.ModuleName)
	if err != nil {
		return nil, fmt.Errorf("gcov snapshot: %w", err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	p.gcov.snapshots++
	for _, d := range files {
		p.gcov.bytes += len(d)
	}
	p.gcov.time += time.Since(start)
	return files, nil
}

func stepCoverage(ctx context.Context, p *prober) (string, error) {
	if err := kernelio.MountDebugfs(); err != nil {
		return "", skipf("no kernelio.Debugfs on this kernel: %v", err)
	}
	if _, err := os.Stat(kernelio.GcovDir); err != nil {
		return "", skipf("this kernel has no %s (CONFIG_GCOV_KERNEL off): no line coverage", kernelio.GcovDir)
	}
	files, err := kernelio.GcovData(p.cfg.ModuleName)
	if err != nil {
		return "", fmt.Errorf("read gcov data: %w", err)
	}
	if len(files) == 0 {
		return "", skipf("no .gcda of %s under %s: the module was not built with GCOV_PROFILE", p.cfg.ModuleName, kernelio.GcovDir)
	}
	p.files = files
	size := 0
	for _, d := range files {
		size += len(d)
	}
	info := fmt.Sprintf("%d gcov file(s), %d bytes", len(files), size)
	if p.cfg.GcovSnapshots {
		info += "; " + p.gcov.String()
	}
	return info, nil
}
