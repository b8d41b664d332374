package shard

import (
	"fmt"
	"testing"
)

// BenchmarkBalance plans 100 units over 8 shards: far more than any
// matrix here, to show planning never matters to a CI run's time.
func BenchmarkBalance(b *testing.B) {
	var us []Unit
	for i := range 100 {
		us = append(us, Unit{Kernel: fmt.Sprintf("k%03d", i), Cost: float64(i%17 + 1)})
	}
	for b.Loop() {
		if _, err := Balance(us, 8); err != nil {
			b.Fatal(err)
		}
	}
}
