package harness

import (
	"github.com/kmodtest/kmodtest/internal/userpath"
	"os"
	"regexp"
	"strings"
)

// rerunEnv are the variables that shape a run without being flags: a
// rerun repeats them when they are set.
var rerunEnv = []string{"KMODTEST_MATRIX", "KMODTEST_CACHE", "KMODTEST_MIRROR", "KMODTEST_FIXTURE_KERNEL"}

// pathEnv are the variables of rerunEnv that name files: the rerun gives
// them as the absolute paths this run used.
var pathEnv = map[string]bool{"KMODTEST_MATRIX": true, "KMODTEST_CACHE": true}

// RerunLine returns the shell command, to be run from the repository
// root, that reruns the go test named test ("TestModule/6.1"), narrowed
// to one step's subtest when step is not empty. It repeats every setting
// that shaped this run: the variables of rerunEnv, and every option
// (Options.Args) but -update, with the kernels narrowed to the failing
// target's and the accelerator this run used.
func (s *Session) RerunLine(test, step string) string {
	var words []string
	for _, name := range rerunEnv {
		v := os.Getenv(name)
		if name == "KMODTEST_CACHE" {
			v = s.Cache.Dir
		}
		if v == "" {
			continue
		}
		if pathEnv[name] {
			if abs, err := userpath.Resolve(v); err == nil {
				v = abs
			}
		}
		words = append(words, name+"="+v)
	}

	parts := strings.Split(test, "/")
	if step != "" {
		parts = append(parts, step)
	}
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	words = append(words, "go", "test", "./vmtests", "-v", "-count=1", "-run", strings.Join(parts, "/"))

	// The session's options hold absolute paths already; the rerun
	// narrows the kernels to the failing target's, names the
	// accelerator this run used, and leaves the cache as it is.
	o := s.Options
	if tg, ok := s.targetOf(parts); ok && s.Custom == nil {
		o.Kernels = tg.Kernel.Name
	}
	if o.Steps == StepsCore {
		o.Steps = ""
	}
	o.Accel = string(s.Accel)
	o.Update = false
	words = append(words, o.Args()...)
	return shellJoin(words)
}

// targetOf returns the target whose subtest the anchored -run pattern
// parts name (their second element), if any.
func (s *Session) targetOf(parts []string) (Target, bool) {
	if len(parts) < 2 {
		return Target{}, false
	}
	for _, tg := range s.Targets {
		if "^"+regexp.QuoteMeta(tg.Name())+"$" == parts[1] {
			return tg, true
		}
	}
	return Target{}, false
}

// RerunScript returns rerun.sh for a rerun line: it changes to the
// repository root first, so that it works from anywhere.
func (s *Session) RerunScript(line string) string {
	return "#!/bin/sh\n# Reruns this target with the settings of the run that wrote it.\ncd " +
		shellQuote(s.Repo) + " || exit 1\n" + line + "\n"
}

// shellJoin quotes words for a POSIX shell and joins them with spaces.
// Leading NAME=value words stay assignments: only their value is quoted.
func shellJoin(words []string) string {
	out := make([]string, len(words))
	assigning := true
	for i, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if assigning && ok && envName.MatchString(name) {
			out[i] = name + "=" + shellQuote(value)
			continue
		}
		assigning = false
		out[i] = shellQuote(w)
	}
	return strings.Join(out, " ")
}

var (
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)
)

// shellQuote quotes s for a POSIX shell, leaving plain words as they are.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
