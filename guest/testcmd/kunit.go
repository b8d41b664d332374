package testcmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/ktap"
)

// KUnitDir is where KUnit keeps each suite's last results, with debugfs
// mounted (kernelio.MountDebugfs) and CONFIG_KUNIT_DEBUGFS set.
const KUnitDir = "/sys/kernel/debug/kunit"

// ErrNoKUnit says the kernel shows no KUnit results: the caller skips
// the KUnit tests, saying why.
var ErrNoKUnit = errors.New("no KUnit results: the kernel lacks CONFIG_KUNIT_DEBUGFS, or debugfs is not mounted")

// ReadKUnit reads the results of the named suites under dir (KUnitDir in
// the guest), or of every suite there when none is named, sorted by
// name. Each suite is a Result: its file's KTAP, passing only when that
// passes. A named suite with no results fails (its module did not
// register it, or the kernel did not run it); so does a file that is
// empty (the suite has not run) or holds no KTAP. It returns ErrNoKUnit
// when dir does not exist.
func ReadKUnit(dir string, suites ...string) ([]Result, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s does not exist)", ErrNoKUnit, dir)
	} else if err != nil {
		return nil, fmt.Errorf("read KUnit results: %w", err)
	}
	if len(suites) == 0 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read KUnit results: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				suites = append(suites, e.Name())
			}
		}
		slices.Sort(suites)
	}
	var out []Result
	for _, s := range suites {
		out = append(out, readSuite(dir, s))
	}
	return out, nil
}

// readSuite judges one suite's results file.
func readSuite(dir, suite string) Result {
	res := Result{Name: suite, ExitCode: -1}
	path := filepath.Join(dir, suite, "results")
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Status, res.Reason = StatusFail, fmt.Sprintf("no KUnit suite %q (%s is missing): the module did not register it, or the kernel lacks it", suite, path)
		return res
	case err != nil:
		res.Status, res.Reason = StatusFail, fmt.Sprintf("read %s: %v", path, err)
		return res
	case strings.TrimSpace(string(data)) == "":
		res.Status, res.Reason = StatusFail, fmt.Sprintf("%s is empty: the suite has not run", path)
		return res
	}
	res.Output = lastLines(string(data), TailLines)
	doc, err := ktap.Parse(string(data))
	if err != nil {
		res.Status, res.Reason = StatusFail, fmt.Sprintf("%s: %v", path, err)
		return res
	}
	res.KTAP = doc
	switch doc.Status() {
	case ktap.StatusPass:
		res.Status = StatusPass
	case ktap.StatusSkip:
		res.Status, res.Reason = StatusSkip, "KUnit: every test skipped"
	default:
		res.Status, res.Reason = StatusFail, "KUnit: "+ktapFailure(doc)
	}
	return res
}

func lastLines(text string, n int) []string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}
