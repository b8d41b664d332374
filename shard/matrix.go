package shard

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// An Entry is one shard as a row of a GitHub Actions matrix: every value
// a job needs to run its shard, as strings the workflow passes on to
// environment variables.
type Entry struct {
	// Shard is "1/3"; ID is "1-of-3", for names that may not hold a
	// slash (artifacts).
	Shard string `json:"shard"`
	ID    string `json:"id"`
	// Kernels is the -kernels list (KMODTEST_KERNELS).
	Kernels string `json:"kernels"`
	// Key is Kernels for cache keys, which may not hold commas.
	Key string `json:"key"`
	// Fixtures is "1" when the shard runs the fixture suites
	// (KMODTEST_FIXTURES), else "".
	Fixtures string `json:"fixtures"`
	// DebugKernel is "1" when the shard holds the debug kernel
	// (KMODTEST_DEBUG_KERNEL), else "".
	DebugKernel string `json:"debug_kernel"`
	// Run is go test's -run pattern.
	Run string `json:"run"`
	// Timeout is go test's -timeout; JobTimeout the job's limit in
	// minutes, with room for setup and the uploads.
	Timeout    string `json:"timeout"`
	JobTimeout int    `json:"job_timeout"`
	// Cost is the shard's planned work in seconds.
	Cost int `json:"cost"`
}

// Timeouts of a shard, as the per-kernel jobs had them: the debug
// kernel's first run builds it (docs/performance.md).
const (
	timeout           = "35m"
	jobTimeout        = 50
	debugTimeout      = "70m"
	debugJobTimeout   = 85
	debugOnlyTests    = "TestModule|TestDebugFixtures"
	everyTest         = "."
	cacheKeySeparator = "_"
)

// EntryOf returns s as a matrix row. A shard that holds the debug kernel
// but not the fixture kernel runs TestModule and TestDebugFixtures only:
// KMODTEST_FIXTURES=1, which the debug fixtures need, would otherwise
// run the fixture kernel's suites there too.
func EntryOf(s Shard) Entry {
	e := Entry{
		Shard:      fmt.Sprintf("%d/%d", s.Index, s.Of),
		ID:         fmt.Sprintf("%d-of-%d", s.Index, s.Of),
		Kernels:    strings.Join(s.Kernels(), ","),
		Key:        strings.Join(s.Kernels(), cacheKeySeparator),
		Run:        everyTest,
		Timeout:    timeout,
		JobTimeout: jobTimeout,
		Cost:       int(math.Ceil(s.Cost)),
	}
	debug, fixtures := false, false
	for _, u := range s.Units {
		debug = debug || u.Debug
		fixtures = fixtures || (u.Fixtures && !u.Debug)
	}
	if debug {
		e.DebugKernel, e.Fixtures = "1", "1"
		e.Timeout, e.JobTimeout = debugTimeout, debugJobTimeout
		if !fixtures {
			e.Run = debugOnlyTests
		}
	}
	if fixtures {
		e.Fixtures = "1"
	}
	return e
}

// Matrix returns shards as a GitHub Actions matrix, {"include": [...]},
// on one line (for $GITHUB_OUTPUT).
func Matrix(shards []Shard) ([]byte, error) {
	m := struct {
		Include []Entry `json:"include"`
	}{Include: []Entry{}}
	for _, s := range shards {
		m.Include = append(m.Include, EntryOf(s))
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	return data, nil
}
