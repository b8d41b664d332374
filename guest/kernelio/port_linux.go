package kernelio

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// portWait bounds the wait for the result port after its drivers are
// loaded: devtmpfs makes the node as the device registers, and a virtio
// console port opens (no ENODEV) only once the host side has announced it,
// which the driver handles in a workqueue.
const portWait = 5 * time.Second

// PreparePort loads the result port's driver modules, in order, and waits
// until port opens. A module already in the kernel is fine.
func PreparePort(modules []string, port string) error {
	start := time.Now()
	for _, path := range modules {
		if err := loadModuleFile(path); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load result port driver %s: %w", path, err)
		}
	}
	end := time.Now().Add(portWait)
	for {
		fd, err := unix.Open(port, unix.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err == nil {
			if len(modules) > 0 || time.Since(start) > 100*time.Millisecond {
				fmt.Fprintf(os.Stderr, "kmodtest: result port %s ready after %d ms (%d driver modules loaded)\n", port, time.Since(start).Milliseconds(), len(modules))
			}
			return unix.Close(fd)
		}
		if time.Now().After(end) {
			return fmt.Errorf("result port %s: %w after %s", port, err, portWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadModuleFile loads one module file without parameters.
func loadModuleFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}
