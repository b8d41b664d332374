package main

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

const taintPath = "/proc/sys/kernel/tainted"

// readTaint returns the kernel's taint mask.
func readTaint() (uint64, error) {
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

func readTaintOr0() uint64 {
	v, _ := readTaint()
	return v
}

// taintFlags names the bits of the taint mask (kernel/panic.c).
var taintFlags = []struct {
	letter byte
	name   string
}{
	{'P', "proprietary module"},
	{'F', "forced module load"},
	{'S', "CPU out of spec"},
	{'R', "forced rmmod"},
	{'M', "machine check"},
	{'B', "bad page"},
	{'U', "user request"},
	{'D', "kernel died (oops)"},
	{'A', "overridden ACPI table"},
	{'W', "warning"},
	{'C', "staging driver"},
	{'I', "firmware workaround"},
	{'O', "out-of-tree module"},
	{'E', "unsigned module"},
	{'L', "soft lockup"},
	{'K', "live patch"},
	{'X', "auxiliary"},
	{'T', "struct randomization"},
	{'N', "test module"},
	{'J', "fwctl"},
}

// Taints that loading an out-of-tree, unsigned module brings by itself.
const (
	taintOOT      = 1 << 12
	taintUnsigned = 1 << 13
	benignTaints  = taintOOT | taintUnsigned
)

// describeTaint names the bits of mask, such as "B (bad page), W (warning)".
func describeTaint(mask uint64) string {
	var parts []string
	for mask != 0 {
		bit := bits.TrailingZeros64(mask)
		mask &^= 1 << bit
		if bit < len(taintFlags) {
			parts = append(parts, fmt.Sprintf("%c (%s)", taintFlags[bit].letter, taintFlags[bit].name))
		} else {
			parts = append(parts, fmt.Sprintf("bit %d", bit))
		}
	}
	return strings.Join(parts, ", ")
}

// badTaint returns the taints gained between before and after, except the
// ones loading an out-of-tree unsigned module causes, described for a
// failure message; "" if there are none.
func badTaint(before, after uint64) string {
	gained := after &^ before &^ benignTaints
	if gained == 0 {
		return ""
	}
	return "kernel taint gained " + describeTaint(gained)
}
