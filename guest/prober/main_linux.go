// Command prober runs inside a test VM as u-root's uinit. It loads the
// greeting module, talks to it over netlink step by step, writes one JSON
// event line per step boundary to contract.ResultPort and powers the VM off.
//
// Run with -greet-once it is instead a child sender of the unprivileged
// and namespace steps: it greets the module once, reports who and where it
// is, and exits 0 only on a correct reply and ack (child_linux.go).
//
// With Config.JobPort set it first waits for the host to send the module
// and the steps (kmodtest watch); with Config.Shell it loads the module
// and runs an interactive shell instead (kmodtest shell), in which it also
// serves as the probe and greet commands (see commands_linux.go).
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/kmodtest/kmodtest/guest/kernelio"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == greetOnceArg {
		os.Exit(greetOnce(os.Args[2:]))
	}
	if cmd, ok := shellCommand(os.Args); ok {
		os.Exit(cmd())
	}
	defer powerOff()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "kmodtest: prober panicked: %v\n%s", r, debug.Stack())
		}
	}()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kmodtest: prober: %v\n", err)
	}
}

// run executes the configured steps and reports them.
func run() error {
	cfg, cfgErr := loadConfig(configPath)
	port := resultPortPath
	if cfg.ResultPort != "" {
		port = cfg.ResultPort
		if err := kernelio.PreparePort(cfg.PortModules, port); err != nil {
			fmt.Fprintf(os.Stderr, "kmodtest: %v\n", err)
		}
	}
	rep, note := openReporter(port)
	defer rep.Close()
	if note != "" {
		fmt.Fprintf(os.Stderr, "kmodtest: %s\n", note)
	}
	// Userspace writes to /dev/kmsg are rate-limited by default; our step
	// markers must not be dropped.
	_ = os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0)

	switch {
	case cfgErr == nil && cfg.Shell:
		return runShell(rep, cfg)
	case cfgErr == nil && cfg.JobPort != "":
		cfgErr = waitForJob(rep, &cfg)
	}
	if cfgErr == nil && cfg.Project != nil {
		runProject(rep, cfg)
		return nil
	}
	p := newProber(cfg, cfgErr)
	p.rep = rep
	if cfgErr == nil {
		// Before the module is loaded: what kmemleak reports now is the kernel's.
		p.leaks = newLeakLedger()
		p.planLeakScan(cfg.Steps)
	}
	start := time.Now()
	for i, name := range cfg.Steps {
		p.runStep(rep, name, i == 0)
	}
	rep.done(kernelRelease(), kernelio.ReadTaintOr0(), time.Since(start))
	return cfgErr
}

// powerOff flushes file systems and turns the VM off. It never returns.
func powerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(os.Stderr, "kmodtest: power off: %v\n", err)
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	}
	// Reboot does not return on success; if it failed, wait for the
	// host's VM timeout rather than fall back into a shell.
	select {}
}
