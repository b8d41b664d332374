package contract

import (
	"fmt"
	"math/bits"
	"strings"
)

// A TaintFlag is one bit of /proc/sys/kernel/tainted.
type TaintFlag struct {
	Letter byte
	Name   string
}

// TaintFlags names the taint bits in bit order (kernel/panic.c,
// taint_flags). The prober and the host read taints with this one table.
var TaintFlags = []TaintFlag{
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

// AllowedTaint holds the taints loading an out-of-tree, unsigned module
// brings by itself: O (bit 12) and E (bit 13). A step may add them.
const AllowedTaint = 1<<12 | 1<<13

// NewTaint returns the taint bits set in after but not in before, other
// than AllowedTaint.
func NewTaint(before, after uint64) uint64 {
	return after &^ before &^ AllowedTaint
}

// TaintLetters names the bits of mask with the kernel's letters ("BW"),
// "none" for no bit; unknown bits are "?".
func TaintLetters(mask uint64) string {
	if mask == 0 {
		return "none"
	}
	var b strings.Builder
	for mask != 0 {
		bit := bits.TrailingZeros64(mask)
		mask &^= 1 << bit
		if bit < len(TaintFlags) {
			b.WriteByte(TaintFlags[bit].Letter)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// DescribeTaint names the bits of mask in words, such as
// "B (bad page), W (warning)"; an unknown bit is "bit 40".
func DescribeTaint(mask uint64) string {
	var parts []string
	for mask != 0 {
		bit := bits.TrailingZeros64(mask)
		mask &^= 1 << bit
		if bit < len(TaintFlags) {
			parts = append(parts, fmt.Sprintf("%c (%s)", TaintFlags[bit].Letter, TaintFlags[bit].Name))
		} else {
			parts = append(parts, fmt.Sprintf("bit %d", bit))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
