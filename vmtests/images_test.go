package vmtests

import (
	"testing"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/internal/arch"
)

// TestBootImages checks the images of the selected kernels as the run
// fetched them into its cache: every amd64 kernel's bzImage names its
// release, its headers build modules its vermagic accepts, and QEMU
// boots the ELF vmlinux extracted from it through PVH rather than the
// slower bzImage (BootImage falls back to the bzImage with only a log
// line, so a broken extraction would otherwise pass unseen).
func TestBootImages(t *testing.T) {
	if env.Custom != nil {
		t.Skip("a custom kernel boots the image it was given")
	}
	seen := map[string]bool{}
	for _, tg := range env.Targets {
		k := tg.Kernel
		if seen[k.Name] || k.Arch.OrDefault() != arch.AMD64 {
			continue
		}
		seen[k.Name] = true
		t.Run(k.Name, func(t *testing.T) {
			p := env.Prepare(t.Context(), k, "")
			if err := p.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			f := p.Kernel
			img, err := bootimage.CheckTree(f.Vmlinuz, f.KDIR)
			if err != nil {
				t.Fatalf("the kernel's own headers: %v", err)
			}
			if img.Kind != "bzImage" {
				t.Errorf("%s: a %s, want a bzImage", f.Vmlinuz, img.Kind)
			}
			boot, err := bootimage.ReadImage(p.Image)
			if err != nil {
				t.Fatal(err)
			}
			if boot.Kind != "ELF vmlinux" || boot.Release != img.Release {
				t.Errorf("QEMU boots %s (%s %s), want the vmlinux extracted from the bzImage of %s", p.Image, boot.Kind, boot.Release, img.Release)
			}
		})
	}
}
