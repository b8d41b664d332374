package harness

import (
	"testing"

	"github.com/kmodtest/kmodtest/kernels"
)

func TestShellLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Boot
		want string
	}{
		{"matrix kernel", Boot{Target: Target{Kernel: kernels.Kernel{Name: "6.1"}, Profile: "default"}, Kernel: &kernels.Fetched{}, Ko: "/c/m.ko", Dir: "/a/6.1"},
			"kmodtest shell -kernels 6.1 -ko /a/6.1/m.ko"},
		{"hardened profile", Boot{Target: Target{Kernel: kernels.Kernel{Name: "7.3"}, Profile: "hardened"}, Kernel: &kernels.Fetched{}, Ko: "/c/m.ko", Dir: "/a/7.3-hardened"},
			"kmodtest shell -kernels 7.3 -profile hardened -ko /a/7.3-hardened/m.ko"},
		{"own kernel", Boot{Target: Target{Kernel: kernels.Kernel{Name: "custom-6.12.0"}}, Kernel: &kernels.Fetched{Vmlinuz: "/k/bzImage", KDIR: "/k"}, Ko: "/c/m.ko", Dir: "/a/x"},
			"kmodtest shell -kernel /k/bzImage -kdir /k -ko /a/x/m.ko"},
		{"a path with a space", Boot{Target: Target{Kernel: kernels.Kernel{Name: "6.1"}}, Kernel: &kernels.Fetched{}, Ko: "/c/m.ko", Dir: "/my art/6.1"},
			"kmodtest shell -kernels 6.1 -ko '/my art/6.1/m.ko'"},
		{"arm64", Boot{Target: Target{Kernel: kernels.Kernel{Name: "6.1-arm64", Arch: "arm64"}}, Kernel: &kernels.Fetched{}, Ko: "/c/m.ko", Dir: "/a/x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.ShellLine(); got != tc.want {
				t.Errorf("ShellLine:\nwant %q\ngot  %q", tc.want, got)
			}
		})
	}
}
