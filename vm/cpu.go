package vm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// CPUModels returns the CPU models the QEMU of arch ("" is amd64)
// offers for -cpu, as `-cpu help` lists them, with "host" and "max".
func CPUModels(ctx context.Context, a arch.Arch) ([]string, error) {
	bin := QEMUBinary(a)
	args := []string{"-cpu", "help"}
	if a == arch.ARM64 {
		args = append([]string{"-M", "virt"}, args...)
	}
	out, err := proc.Output(proc.Command(ctx, bin, args...))
	if err != nil {
		return nil, fmt.Errorf("list the CPU models of %s: %w", bin, err)
	}
	return parseCPUHelp(string(out)), nil
}

// parseCPUHelp reads the model names of QEMU's `-cpu help`: for x86
// "x86 NAME  description" lines, for Arm indented names under
// "Available CPUs:"; both end at the first blank line.
func parseCPUHelp(out string) []string {
	var models []string
	s := bufio.NewScanner(strings.NewReader(out))
	listing := false
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "Available CPUs:"):
			listing = true
			continue
		case strings.TrimSpace(line) == "":
			if listing && len(models) > 0 {
				listing = false
			}
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "x86" && len(f) > 1:
			models = append(models, f[1])
		case listing && len(f) == 1:
			models = append(models, f[0])
		}
	}
	for _, m := range []string{"host", "max"} {
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	return models
}

// CheckCPUModel returns nil when the QEMU of arch offers model, and
// otherwise an error that lists what it does offer.
func CheckCPUModel(ctx context.Context, a arch.Arch, model string) error {
	models, err := CPUModels(ctx, a)
	if err != nil {
		return err
	}
	if slices.Contains(models, model) {
		return nil
	}
	return fmt.Errorf("-cpu %q: %s has no such CPU model; it offers: %s", model, QEMUBinary(a), strings.Join(models, " "))
}

// hostCPU identifies the host's CPU for a guest that runs on it directly
// (KVM with -cpu host): vendor, family, model, stepping, microcode and
// flags of the first processor in cpuinfo (/proc/cpuinfo's text). A
// guest saved on one CPU must not be restored on another: it would run
// with CPU features it probed on the first, or QEMU would refuse it.
func hostCPU(cpuinfo string) string {
	keep := []string{"vendor_id", "cpu family", "model", "model name", "stepping", "microcode", "flags",
		"CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision", "Features"}
	var out []string
	s := bufio.NewScanner(strings.NewReader(cpuinfo))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.TrimSpace(line) == "" && len(out) > 0 {
			break // the first processor's block ends
		}
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if ok && slices.Contains(keep, k) {
			out = append(out, k+": "+strings.TrimSpace(v))
		}
	}
	return strings.Join(out, "\n")
}

// hostCPUFile is where hostCPU's input comes from.
const hostCPUFile = "/proc/cpuinfo"

// readHostCPU returns hostCPU of this machine.
func readHostCPU() (string, error) {
	data, err := os.ReadFile(hostCPUFile)
	if err != nil {
		return "", fmt.Errorf("identify the host CPU: %w", err)
	}
	return hostCPU(string(data)), nil
}
