package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
	"golang.org/x/sys/unix"
)

// sysModule returns the module's sysfs directory.
func (p *prober) sysModule() string { return "/sys/module/" + p.cfg.ModuleName }

// moduleLoaded reports whether the module is in the kernel.
func (p *prober) moduleLoaded() bool {
	_, err := os.Stat(p.sysModule())
	return err == nil
}

// requireModule returns an error naming why the module is not loaded.
func (p *prober) requireModule() error {
	if p.moduleLoaded() {
		return nil
	}
	if p.insmodErr != nil {
		return fmt.Errorf("module not loaded (insmod failed: %v)", p.insmodErr)
	}
	return fmt.Errorf("module not loaded (%s does not exist)", p.sysModule())
}

// params returns the module parameters for the configured protocol.
func (p *prober) params() string {
	if p.cfg.Protocol == greet.Protocol {
		return ""
	}
	return "protocol=" + strconv.Itoa(p.cfg.Protocol)
}

// insmod loads the module and checks that sysfs shows it live.
func (p *prober) insmod() error {
	return p.insmodParams(p.params())
}

// insmodParams loads the module with the given parameters.
func (p *prober) insmodParams(params string) error {
	f, err := os.Open(p.cfg.ModulePath)
	if err != nil {
		return fmt.Errorf("insmod: %w", err)
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), params, 0)
	if errors.Is(err, unix.ENOSYS) {
		var image []byte
		image, err = os.ReadFile(p.cfg.ModulePath)
		if err == nil {
			err = unix.InitModule(image, params)
		}
	}
	if err != nil {
		return fmt.Errorf("insmod %s %q: %w", p.cfg.ModulePath, params, err)
	}
	state, err := os.ReadFile(p.sysModule() + "/initstate")
	if err != nil {
		return fmt.Errorf("insmod succeeded but %w", err)
	}
	if s := strings.TrimSpace(string(state)); s != "live" {
		return fmt.Errorf("insmod succeeded but %s/initstate: want live, got %q", p.sysModule(), s)
	}
	return nil
}

// rmmod unloads the module, retrying for a while if it is busy: sockets
// closed just before may take a moment to drop their module reference.
func (p *prober) rmmod(retryFor time.Duration) (tries int, err error) {
	end := time.Now().Add(retryFor)
	for {
		tries++
		err = unix.DeleteModule(p.cfg.ModuleName, unix.O_NONBLOCK)
		if err == nil {
			break
		}
		if !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) || time.Now().After(end) {
			return tries, fmt.Errorf("rmmod %s: %w (after %d tries)", p.cfg.ModuleName, err, tries)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(p.sysModule()); err == nil {
		return tries, fmt.Errorf("rmmod %s succeeded but %s still exists", p.cfg.ModuleName, p.sysModule())
	}
	return tries, nil
}
