package harness

import (
	"path/filepath"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/vm"
)

// portFiles returns what a guest needs for the result port port
// describes (kernels.ResultPort): the driver modules for its initramfs,
// their paths in the guest (contract.Config.PortModules, in load order)
// and the virtio transport of its VM. A booted and a saved guest get the
// same: an amd64 guest (nil port) needs nothing.
func portFiles(port *bootimage.VirtioPort) (files []initramfs.File, modules []string, transport string) {
	transport = vm.VirtioPCI
	if port == nil {
		return nil, nil, transport
	}
	if port.MMIO {
		transport = vm.VirtioMMIO
	}
	for _, ko := range port.Modules {
		target := initramfs.ModuleDir + "/port/" + filepath.Base(ko)
		files = append(files, initramfs.File{Source: ko, Target: target})
		modules = append(modules, target)
	}
	return files, modules, transport
}
