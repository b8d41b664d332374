package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"github.com/kmodtest/kmodtest/guest/testcmd"
	"github.com/kmodtest/kmodtest/ktap"
)

// This file runs a project's own tests (contract.ProjectJob's Tests and
// KUnit) once every module is loaded, through guest/testcmd. Each test
// is a step, and each KTAP subtest a step of its own after it, so that
// the host judges them, and shows them, as it does the module steps.

// quotedOutput is how many of a failed test's last output lines its
// step's detail quotes (testcmd keeps testcmd.TailLines).
const quotedOutput = 15

// runProjectTests runs the job's tests and KUnit suites in order; with
// skipWhy set (a module is not loaded) each is skipped, saying why.
func runProjectTests(rep *reporter, job contract.ProjectJob, slowdown int, skipWhy string) {
	for _, t := range job.Tests {
		name := contract.TestStep(t.Name)
		if skipWhy != "" {
			projectStep(rep, name, false, time.Minute, func(context.Context) (string, error) { return "", skipf("%s", skipWhy) })
			continue
		}
		timeout := time.Duration(t.TimeoutMS) * time.Millisecond
		if timeout <= 0 {
			timeout = testcmd.DefaultTimeout
		}
		timeout *= time.Duration(max(slowdown, 1))
		cmd := testcmd.Command{Name: t.Name, Args: testArgs(t.Args), KTAP: t.KTAP, Timeout: timeout, Dir: "/",
			Env: []string{"PATH=" + contract.ProjectTestPath, "HOME=/", "TERM=dumb"}}
		results := make(chan testcmd.Result, 1)
		projectStep(rep, name, false, timeout+contract.ProjectTestGrace, func(ctx context.Context) (string, error) {
			res := testcmd.Run(ctx, cmd)
			results <- res
			return judged(res)
		})
		select {
		case res := <-results:
			reportSubtests(rep, name, res.Subtests())
		default: // abandoned: its subtests are unknown
		}
	}
	if len(job.KUnit) == 0 {
		return
	}
	var suites []testcmd.Result
	err := errors.New(skipWhy)
	if skipWhy == "" {
		if merr := kernelio.MountDebugfs(); merr != nil {
			err = fmt.Errorf("mount debugfs for KUnit's results: %w", merr)
		} else {
			suites, err = testcmd.ReadKUnit(testcmd.KUnitDir, job.KUnit...)
		}
	}
	for i, s := range job.KUnit {
		name := contract.KUnitStep(s)
		if err != nil {
			projectStep(rep, name, false, time.Minute, func(context.Context) (string, error) { return "", skipf("%v", err) })
			continue
		}
		projectStep(rep, name, false, time.Minute, func(context.Context) (string, error) { return judged(suites[i]) })
		reportSubtests(rep, name, suites[i].Subtests())
	}
}

// testArgs resolves a test's program in contract.ProjectTestPath: exec
// looks a bare name up in the prober's own PATH, not the command's.
func testArgs(args []string) []string {
	if len(args) == 0 || strings.Contains(args[0], "/") {
		return args
	}
	for _, dir := range strings.Split(contract.ProjectTestPath, ":") {
		p := dir + "/" + args[0]
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return append([]string{p}, args[1:]...)
		}
	}
	return args // exec says it is not found
}

// judged turns a test's result into a step's outcome: a failure says
// why and quotes the end of the test's output.
func judged(res testcmd.Result) (string, error) {
	switch res.Status {
	case testcmd.StatusPass:
		info := fmt.Sprintf("passed in %s", res.Duration.Round(time.Millisecond))
		if n := len(res.Subtests()); n > 0 {
			info += fmt.Sprintf(", %d KTAP tests", n)
		}
		return info, nil
	case testcmd.StatusSkip:
		return "", skipf("%s", res.Reason)
	}
	msg := res.Reason
	if out := res.Output[max(0, len(res.Output)-quotedOutput):]; len(out) > 0 {
		msg += "\noutput (last lines):\n" + strings.Join(out, "\n")
	}
	return "", errors.New(msg)
}

// reportSubtests reports each KTAP test, and its own subtests, as a
// step named parent/test: begun and ended at once, since it ran inside
// its parent's step (whose log window and taints were judged).
func reportSubtests(rep *reporter, parent string, tests []*ktap.Test) {
	for _, t := range tests {
		name := parent + "/" + subtestName(t)
		taint := kernelio.ReadTaintOr0()
		rep.begin(name, "", taint)
		detail := t.Reason
		if t.Status != ktap.StatusPass && t.Directive != "" {
			detail = strings.TrimSpace(t.Directive + " " + t.Reason)
		}
		if t.Status == ktap.StatusFail && len(t.Diagnostics) > 0 {
			detail = strings.TrimSpace(detail + "\n" + strings.Join(t.Diagnostics[max(0, len(t.Diagnostics)-quotedOutput):], "\n"))
		}
		if t.Status == ktap.StatusFail && detail == "" {
			detail = fmt.Sprintf("not ok %d %s", t.Number, t.Name)
		}
		rep.end(contract.Event{Step: name, Status: t.Status, Detail: detail, TaintBefore: taint, TaintAfter: taint})
		reportSubtests(rep, name, t.Subtests)
	}
}

// subtestName is a KTAP test's name as a step name: its number when it
// has none, and without slashes, which separate the levels.
func subtestName(t *ktap.Test) string {
	n := strings.TrimSpace(t.Name)
	if n == "" {
		n = fmt.Sprint(t.Number)
	}
	return strings.NewReplacer("/", "_", " ", "_").Replace(n)
}
