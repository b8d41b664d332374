package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
)

// This file is the project mode's debug-kernel steps: the fail-nth sweep
// over a module's init (init-faults/MODULE) and kmemleak's scan after
// the cleanup (kmemleak). They reuse insmod-faults' sweep (sweepInsmod)
// and the leak ledger of NetlinkGreetings' steps (leakLedger).

// initFaults sweeps fail-nth over m's load with its default arguments:
// a load that fails must leave no /sys/module/NAME, one that succeeds
// must be live, and is unloaded. Then kmemleak scans, where the kernel
// has it, and an object the sweep left fails the step. The modules
// before m stay loaded throughout.
func initFaults(ctx context.Context, rep *reporter, leaks *leakLedger, step string, m contract.ProjectModule) (string, error) {
	restore, note, err := setupFaultsPrecondition()
	if err != nil {
		return "", err
	}
	defer restore()
	points, failed, loaded, err := sweepInsmod(ctx, m.Path, strings.Join(m.DefaultArgs(), " "),
		func(n int) {
			if n%20 == 0 {
				rep.progress(fmt.Sprintf("%s: fault point %d", step, n))
			}
			leaks.mark(fmt.Sprintf("%s, fault point %d", step, n))
		},
		func(where string, loadErr error) error {
			if sysfsPresent(m.Name) {
				return fmt.Errorf("%s: insmod failed (%v) but /sys/module/%s is left", where, errnoText(loadErr), m.Name)
			}
			return nil
		},
		func(where string) error {
			if !moduleLive(m.Name) {
				return fmt.Errorf("%s: insmod succeeded but /sys/module/%s/initstate is not live", where, m.Name)
			}
			if err := unload(ctx, m.Name); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return nil
		})
	if err != nil {
		return "", fmt.Errorf("%s: %w", step, err)
	}
	if points == 0 {
		return "", errors.New("no fault point was reached: fail-nth injected nothing")
	}
	info := fmt.Sprintf("%d fault points in insmod: %d loads failed cleanly, %d succeeded anyway", points, failed, loaded-1)
	if note != "" {
		info += "; " + note
	}
	if leaks != nil {
		status, detail := leaks.verdict(step, m.Name, contract.StatusPass, info)
		if status != contract.StatusPass {
			return "", errors.New(detail)
		}
		info = detail
	}
	return info, nil
}

// leaksAfter scans kmemleak once every module is unloaded: an object
// new since the baseline fails this step, quoting kmemleak's record.
func leaksAfter(leaks *leakLedger) (string, error) {
	if leaks == nil {
		return "", skipf("this kernel has no kmemleak")
	}
	status, detail := leaks.verdict(contract.ProjectLeaks, "", contract.StatusPass, "")
	// Objects an earlier step allocated fail this step too, naming it:
	// the project mode's end events carry no blames yet.
	for _, b := range leaks.blames {
		status, detail = contract.StatusFail, join(detail, b.Step+": "+b.Reason)
	}
	leaks.blames = nil
	if status != contract.StatusPass {
		return "", errors.New(detail)
	}
	return detail, nil
}
