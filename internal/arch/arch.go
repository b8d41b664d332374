// Package arch names the guest architectures kmodtest fetches kernels
// for, builds modules for and boots. It is a leaf so that the kernel
// matrix (kernels), the VM layer (vm) and the initramfs builder share one
// definition without importing each other.
package arch

import (
	"runtime"
	"strings"
)

// An Arch is a guest architecture, spelled as Debian and Go's GOARCH
// spell it; "" means AMD64 wherever an Arch is optional.
type Arch string

// The architectures the harness supports.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// All lists the supported architectures, AMD64 first.
var All = []Arch{AMD64, ARM64}

// Host is the architecture of this machine.
func Host() Arch { return Arch(runtime.GOARCH) }

// OrDefault returns a, or AMD64 when a is "".
func (a Arch) OrDefault() Arch {
	if a == "" {
		return AMD64
	}
	return a
}

// Names lists All for messages: "amd64, arm64".
func Names() string {
	names := make([]string, len(All))
	for i, a := range All {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
