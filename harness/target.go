package harness

import (
	"fmt"

	"github.com/kmodtest/kmodtest/kernels"
)

// Profiles are the boot profiles a matrix entry may name. The hardened one
// switches on the memory checks that Debian's stock kernels carry but
// leave off: SLUB red zones, poisoning and user tracking, page poisoning,
// and KFENCE sampling where the kernel has it. Kernels ignore parameters
// they do not know.
var Profiles = map[string][]string{
	"default":  nil,
	"hardened": {"slub_debug=FZPU", "page_poison=1", "kfence.sample_interval=10"},
}

// Target is one kernel booted with one profile: a subtest of its own.
type Target struct {
	Kernel  kernels.Kernel
	Profile string
}

// DefaultSMP is the number of vCPUs of a target whose matrix entry sets
// none: two, so that the concurrency scenarios run in parallel on every
// kernel. Under TCG each vCPU is a host thread (multi-threaded TCG); the
// full matrix took about 6% longer with two than with one on a 2-core host.
const DefaultSMP = 2

// SMP is the number of vCPUs the target boots with.
func (t Target) SMP() int {
	if t.Kernel.SMP > 0 {
		return t.Kernel.SMP
	}
	return DefaultSMP
}

// Name is the target's subtest name: the kernel's, with the profile
// appended when it is not the default one ("7.3-hardened").
func (t Target) Name() string {
	if t.Profile == "" || t.Profile == "default" {
		return t.Kernel.Name
	}
	return t.Kernel.Name + "-" + t.Profile
}

// Targets expands kernels into their profiles.
func Targets(ks []kernels.Kernel) ([]Target, error) {
	var out []Target
	for _, k := range ks {
		profiles := k.Profiles
		if len(profiles) == 0 {
			profiles = []string{"default"}
		}
		for _, p := range profiles {
			if _, ok := Profiles[p]; !ok {
				return nil, fmt.Errorf("kernel %s names boot profile %q, which does not exist (known: default, hardened)", k.Name, p)
			}
			out = append(out, Target{Kernel: k, Profile: p})
		}
	}
	return out, nil
}
