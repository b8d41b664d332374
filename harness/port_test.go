package harness

import (
	"testing"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

// TestRestorable: both architectures restore a saved guest; -boot and
// modules loaded at boot make a real boot.
func TestRestorable(t *testing.T) {
	amd := Target{Kernel: kernels.Kernel{Name: "6.1"}}
	arm := Target{Kernel: kernels.Kernel{Name: "6.12-arm64", Arch: arch.ARM64}}
	for _, tt := range []struct {
		name string
		boot bool
		job  Job
		want bool
	}{
		{"amd64", false, Job{Target: amd}, true},
		{"arm64", false, Job{Target: arm}, true},
		{"arm64 with -boot", true, Job{Target: arm}, false},
		{"amd64 with -boot", true, Job{Target: amd}, false},
		{"arm64 with a module loaded at boot", false, Job{Target: arm, BootModules: []string{"/m.ko"}}, false},
	} {
		s := &Session{Options: Options{Boot: tt.boot}}
		if got := s.restorable(tt.job); got != tt.want {
			t.Errorf("%s: restorable %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPortFiles: a saved guest gets the same result port drivers and
// transport as a booted one.
func TestPortFiles(t *testing.T) {
	files, modules, transport := portFiles(nil)
	if len(files) != 0 || len(modules) != 0 || transport != vm.VirtioPCI {
		t.Errorf("amd64: %v %v %s, want nothing over the default transport", files, modules, transport)
	}
	files, modules, transport = portFiles(&bootimage.VirtioPort{MMIO: true, Modules: []string{"/lib/modules/r/virtio_mmio.ko", "/lib/modules/r/virtio_console.ko"}})
	if transport != vm.VirtioMMIO || len(files) != 2 || len(modules) != 2 {
		t.Fatalf("6.1-arm64: %v %v %s", files, modules, transport)
	}
	if files[0].Source != "/lib/modules/r/virtio_mmio.ko" || files[0].Target != modules[0] || modules[1] == "" {
		t.Errorf("6.1-arm64: modules out of order or unnamed: %v %v", files, modules)
	}
}
