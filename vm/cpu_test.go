package vm

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
)

func TestParseCPUHelp(t *testing.T) {
	for _, tt := range []struct {
		file      string
		want      []string
		wantCount int
	}{
		{"testdata/cpu-help-x86_64-qemu7.2.txt", []string{"qemu64", "Skylake-Client", "EPYC-Milan", "EPYC-Rome", "Icelake-Server", "host", "max"}, 100},
		{"testdata/cpu-help-aarch64-qemu7.2.txt", []string{"cortex-a57", "cortex-a72", "neoverse-n1", "host", "max"}, 30},
	} {
		data, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		models := parseCPUHelp(string(data))
		for _, w := range tt.want {
			if !slices.Contains(models, w) {
				t.Errorf("%s: %s missing from %q", tt.file, w, models)
			}
		}
		if len(models) < tt.wantCount {
			t.Errorf("%s: %d models, want at least %d", tt.file, len(models), tt.wantCount)
		}
		// The CPUID flags after the model list are not models.
		for _, bad := range []string{"avx512f", "Recognized", "x86"} {
			if slices.Contains(models, bad) {
				t.Errorf("%s: %q taken for a model", tt.file, bad)
			}
		}
	}
}

// cpuinfo builds a /proc/cpuinfo text of two processors.
func cpuinfo(vendor, family, model, flags string) string {
	var b strings.Builder
	for i := range 2 {
		b.WriteString("processor\t: " + string(rune('0'+i)) + "\nvendor_id\t: " + vendor + "\ncpu family\t: " + family +
			"\nmodel\t\t: " + model + "\nmodel name\t: X\nstepping\t: 1\ncpu MHz\t\t: 2596.0" + string(rune('0'+i)) +
			"\nflags\t\t: " + flags + "\n\n")
	}
	return b.String()
}

func TestHostCPU(t *testing.T) {
	milan := cpuinfo("AuthenticAMD", "25", "1", "fpu sse avx2")
	if got := hostCPU(milan); !strings.Contains(got, "vendor_id: AuthenticAMD") || !strings.Contains(got, "flags: fpu sse avx2") || strings.Contains(got, "MHz") {
		t.Errorf("hostCPU = %q: want vendor and flags, not the clock", got)
	}
	if hostCPU(milan) == hostCPU(cpuinfo("AuthenticAMD", "25", "1", "fpu sse avx2 avx512f")) {
		t.Error("two CPUs that differ in one flag have one identity")
	}
	if hostCPU(milan) == hostCPU(cpuinfo("GenuineIntel", "6", "85", "fpu sse avx2")) {
		t.Error("an AMD and an Intel CPU have one identity")
	}
}

// TestMachineIDKeysKVMByHostCPU: a guest saved under KVM is keyed by the
// host's CPU and the accelerator, so a cache moved to another runner
// never restores it there; a TCG guest is the same on every host.
func TestMachineIDKeysKVMByHostCPU(t *testing.T) {
	m := machines[arch.AMD64]
	id := func(accel Accel, cpu, host string) string {
		t.Helper()
		s, err := machineID("QEMU emulator version 7.2.22", host, "qemu-system-x86_64", m, Config{Accel: accel, CPU: cpu, SMP: 2, Kernel: "k", Initramfs: "i"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	epyc, intel := hostCPU(cpuinfo("AuthenticAMD", "25", "1", "fpu")), hostCPU(cpuinfo("GenuineIntel", "6", "85", "fpu"))
	if id(AccelKVM, "", epyc) == id(AccelKVM, "", intel) {
		t.Error("KVM guests saved on an EPYC and an Intel host have one key")
	}
	if id(AccelKVM, "EPYC-Milan", epyc) == id(AccelKVM, "EPYC-Milan", intel) {
		t.Error("KVM guests of a named model on two hosts have one key (KVM drops the features a host lacks)")
	}
	if id(AccelTCG, "", epyc) != id(AccelTCG, "", intel) {
		t.Error("a TCG guest's key depends on the host CPU")
	}
	if id(AccelTCG, "", "") == id(AccelKVM, "", "") {
		t.Error("TCG and KVM guests have one key")
	}
	if id(AccelTCG, "", "") == id(AccelTCG, "EPYC-Milan", "") {
		t.Error("guests of two CPU models have one key")
	}
	if !strings.Contains(id(AccelKVM, "", epyc), "-cpu\nhost") || !strings.Contains(id(AccelTCG, "", ""), "-cpu\nqemu64") {
		t.Error("the default models are host under KVM and qemu64 under TCG")
	}
}

func TestCPUModel(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "qemu64"},
		{Config{Accel: AccelKVM}, "host"},
		{Config{CPU: "EPYC-Milan"}, "EPYC-Milan"},
		{Config{Accel: AccelKVM, CPU: "Skylake-Client"}, "Skylake-Client"},
		{Config{Arch: arch.ARM64}, "cortex-a57"},
		{Config{Arch: arch.ARM64, Accel: AccelKVM}, "host"},
	} {
		if got := tt.cfg.CPUModel(); got != tt.want {
			t.Errorf("%+v: CPU model %q, want %q", tt.cfg, got, tt.want)
		}
	}
}
