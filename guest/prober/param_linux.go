package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Protocols of the module-param step: one out of range, one the kernel
// already uses (NETLINK_ROUTE), one free that is not the default.
const (
	protocolOutOfRange = contract.ProtocolOutOfRange
	protocolTaken      = unix.NETLINK_ROUTE
	protocolOther      = 30
)

// stepModuleParam checks the protocol parameter: out of range fails
// insmod with EINVAL, a protocol the kernel already serves fails it, and
// another free protocol is served there (and shown in sysfs) instead of
// the default. The host checks the out-of-range log line.
func stepModuleParam(ctx context.Context, p *prober) (string, error) {
	if p.moduleLoaded() {
		if _, err := p.rmmod(3 * time.Second); err != nil {
			return "", err
		}
	}
	err := p.insmodParams(fmt.Sprintf("protocol=%d", protocolOutOfRange))
	if !errors.Is(err, unix.EINVAL) {
		p.unloadQuietly()
		return "", fmt.Errorf("insmod protocol=%d: want EINVAL, got %v", protocolOutOfRange, err)
	}
	err = p.insmodParams(fmt.Sprintf("protocol=%d", protocolTaken))
	if err == nil {
		p.unloadQuietly()
		return "", fmt.Errorf("insmod protocol=%d (NETLINK_ROUTE, taken): want an error, got a loaded module", protocolTaken)
	}
	takenErr := err
	if err := p.insmodParams(fmt.Sprintf("protocol=%d", protocolOther)); err != nil {
		return "", err
	}
	defer p.unloadQuietly()
	shown, err := os.ReadFile(p.sysModule() + "/parameters/protocol")
	if err != nil {
		return "", fmt.Errorf("protocol=%d: %w", protocolOther, err)
	}
	if got := strings.TrimSpace(string(shown)); got != fmt.Sprint(protocolOther) {
		return "", fmt.Errorf("protocol=%d: %s/parameters/protocol reads %q", protocolOther, p.sysModule(), got)
	}
	c, err := greet.Dial(protocolOther, nil)
	if err != nil {
		return "", fmt.Errorf("protocol=%d: %w", protocolOther, err)
	}
	_, err = c.Greet(timeoutCtx(ctx, answerTimeout), greetingText, netlink.Request|netlink.Acknowledge)
	c.Close()
	if err != nil {
		return "", fmt.Errorf("greeting on protocol %d: %w", protocolOther, err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, p.cfg.Protocol)
	if err == nil {
		unix.Close(fd)
		return "", fmt.Errorf("loaded with protocol=%d, yet protocol %d has a socket too", protocolOther, p.cfg.Protocol)
	}
	if _, err := p.rmmod(3 * time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("protocol=%d: EINVAL; protocol=%d: %v; protocol=%d served", protocolOutOfRange, protocolTaken, takenErr, protocolOther), nil
}

// unloadQuietly removes the module if a check left it loaded.
func (p *prober) unloadQuietly() {
	if p.moduleLoaded() {
		_, _ = p.rmmod(3 * time.Second)
	}
}
