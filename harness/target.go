package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
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
	// CPU is the guest CPU model; "" is the accelerator's default.
	CPU string
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
			out = append(out, Target{Kernel: k, Profile: p, CPU: k.CPU})
		}
	}
	return out, nil
}

// A CPUChoice is the -guest-cpu option checked against the QEMUs of the
// selected targets: the model, and the architectures whose QEMU offers
// it (EPYC-Milan is x86: the arm64 targets keep their own CPU).
type CPUChoice struct {
	Model  string
	Arches []arch.Arch
}

// Apply gives tg the chosen model when its architecture has it.
func (c CPUChoice) Apply(tg Target) Target {
	if c.Model != "" && slices.Contains(c.Arches, archOf(tg.Kernel)) {
		tg.CPU = c.Model
	}
	return tg
}

// archOf returns k's architecture, amd64 when the entry names none.
func archOf(k kernels.Kernel) arch.Arch {
	return k.Arch.OrDefault()
}

// cpuModelName returns the model of a -cpu value, without the feature
// switches QEMU allows after it ("Skylake-Client,-hle").
func cpuModelName(cpu string) string {
	model, _, _ := strings.Cut(cpu, ",")
	return model
}

// ChooseCPU checks the CPU model cpu ("" keeps each target's own) and
// every target's own model against what the target's QEMU offers, so
// that a misspelt model fails before anything is fetched, with the list
// of models QEMU does offer. logf hears which targets keep their own CPU
// because their architecture lacks the model.
func ChooseCPU(ctx context.Context, targets []Target, cpu string, logf func(string, ...any)) (CPUChoice, error) {
	offers := map[arch.Arch][]string{} // arch -> models
	choice := CPUChoice{Model: cpu}
	var kept []string
	for _, tg := range targets {
		a := archOf(tg.Kernel)
		ms, ok := offers[a]
		if !ok {
			var err error
			if ms, err = vm.CPUModels(ctx, a); err != nil {
				return CPUChoice{}, err
			}
			offers[a] = ms
			if slices.Contains(ms, cpuModelName(cpu)) {
				choice.Arches = append(choice.Arches, a)
			}
		}
		if cpu != "" && !slices.Contains(ms, cpuModelName(cpu)) {
			kept = append(kept, tg.Name())
		}
		if tg.CPU != "" && !slices.Contains(ms, cpuModelName(tg.CPU)) {
			return CPUChoice{}, fmt.Errorf("kernel %s: kernels/matrix.json names cpu %q, which %s does not offer; it offers: %s",
				tg.Kernel.Name, tg.CPU, vm.QEMUBinary(a), strings.Join(ms, " "))
		}
	}
	if cpu != "" && len(choice.Arches) == 0 {
		var lists []string
		hint := ""
		for _, arch := range slices.Sorted(maps.Keys(offers)) {
			lists = append(lists, fmt.Sprintf("%s offers: %s", vm.QEMUBinary(arch), strings.Join(offers[arch], " ")))
			for _, m := range offers[arch] {
				if strings.EqualFold(m, cpuModelName(cpu)) {
					hint = fmt.Sprintf(" (did you mean %s?)", m)
				}
			}
		}
		return CPUChoice{}, fmt.Errorf("-guest-cpu %q: the QEMU of the selected kernels has no such CPU model%s; %s", cpu, hint, strings.Join(lists, "; "))
	}
	if len(kept) > 0 {
		logf("cpu: %s is not a model of their architecture: %s keep their own CPU", cpu, strings.Join(kept, ", "))
	}
	return choice, nil
}
