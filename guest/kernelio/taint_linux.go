package kernelio

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

const taintPath = "/proc/sys/kernel/tainted"

// ReadTaint returns the kernel's taint mask.
func ReadTaint() (uint64, error) {
	b, err := os.ReadFile(taintPath)
	if err != nil {
		return 0, fmt.Errorf("read taint: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse taint %q: %w", b, err)
	}
	return v, nil
}

func ReadTaintOr0() uint64 {
	v, _ := ReadTaint()
	return v
}
