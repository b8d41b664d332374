package harness

import (
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/vm"
)

// ModuleInGuest is where the module lies in the initramfs of a run that
// carries it (a boot, a shell); a restored guest gets it with its job.
const ModuleInGuest = initramfs.ModuleDir + "/" + greet.ModuleName + ".ko"

// GuestConfig is the prober's configuration for every run of tg, booted,
// saved or on a terminal: the module, the result port of the target's
// architecture, and the slowdown of its kernel. Each kind of run adds its
// own part: the steps (a boot), the job port (a snapshot), the shell.
func GuestConfig(tg Target) contract.Config {
	return contract.Config{
		ModulePath: ModuleInGuest,
		ModuleName: greet.ModuleName,
		Protocol:   greet.Protocol,
		ResultPort: vm.ResultPort(tg.Kernel.Arch),
		Slowdown:   slowdown(tg),
	}
}
