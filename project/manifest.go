package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ManifestFile is the name of kmodtest's own project file.
const ManifestFile = "kmodtest.json"

// A Manifest is kmodtest.json: what a project says that dkms.conf does
// not. Every field may be left out. docs/projects.md describes the same
// fields with an example.
type Manifest struct {
	// Name names the project in reports. Default: dkms.conf's
	// PACKAGE_NAME, else the directory's name.
	Name string `json:"name,omitempty"`
	// Make is the build command, run in the project's copy with the
	// variables of a dkms.conf MAKE (${kernelver}, ${kernel_source_dir},
	// ...) set. It replaces dkms.conf's MAKE. Default: dkms.conf's MAKE,
	// else make -C KDIR M=DIR modules.
	Make string `json:"make,omitempty"`
	// Modules are the modules the build makes, in the order they are
	// loaded (a module before those that depend on it). With a
	// dkms.conf, each must be one of its BUILT_MODULE_NAMEs; those the
	// manifest leaves out load after, in dkms.conf's order. Without
	// dkms.conf and without Modules, every .ko the build makes is a
	// module of the project.
	Modules []ModuleSpec `json:"modules,omitempty"`
	// WarningsFail makes a compiler or modpost warning fail the build
	// step. Default false: warnings are shown, the step passes.
	WarningsFail bool `json:"warnings_fail,omitempty"`
	// ExtraWarnings builds with W=1 (the kernel's extra warnings), for
	// the default make command only. Default false, as DKMS builds.
	ExtraWarnings bool `json:"extra_warnings,omitempty"`
	// Tests are the project's own test commands, run in the guest once
	// every module is loaded (after the last module's reload step,
	// before the modules are unloaded at the end), in order.
	Tests []Test `json:"tests,omitempty"`
	// KUnit names KUnit suites whose results are read from the guest's
	// /sys/kernel/debug/kunit/SUITE/results after the tests: the
	// project's modules run their suites when they load. A kernel
	// without KUnit's debugfs skips them.
	KUnit []string `json:"kunit,omitempty"`
}

// A ModuleSpec is one module of the manifest.
type ModuleSpec struct {
	// Name is the module's name: its file is NAME.ko.
	Name string `json:"name"`
	// Location is the directory the build leaves NAME.ko in, relative
	// to the project (dkms.conf's BUILT_MODULE_LOCATION). Default: the
	// dkms.conf's, else the project's top directory.
	Location string `json:"location,omitempty"`
	// Params are the parameter sets the module is loaded with, each one
	// insmod. Default: one load without parameters.
	Params []ParamSet `json:"params,omitempty"`
}

// A ParamSet is one load of a module with parameters.
type ParamSet struct {
	// Name names the set in reports ("two-devices").
	Name string `json:"name"`
	// Args are insmod's arguments: "devices=2", "debug=1".
	Args []string `json:"args"`
	// Refused says the module must refuse this set: insmod fails, and
	// nothing is left loaded.
	Refused bool `json:"refused,omitempty"`
}

// A Test is one of the project's own test commands in the guest: exit
// status 0 passes, 77 skips, anything else fails.
type Test struct {
	// Name names the test's subtest.
	Name string `json:"name"`
	// Run is the command and its arguments, run in the guest.
	Run []string `json:"run"`
	// Go is a Go package of the project ("./cmd/ctltest") built for the
	// guest and put on its PATH under its base name.
	Go string `json:"go,omitempty"`
	// C are C sources of the project built into one program in the
	// kernel's build root and put on the guest's PATH under Name.
	C []string `json:"c,omitempty"`
	// KTAP says the command prints KTAP on stdout: each test line
	// becomes a subtest.
	KTAP bool `json:"ktap,omitempty"`
	// Timeout bounds the command, as a Go duration ("30s"). Default 60s.
	Timeout string `json:"timeout,omitempty"`
}

// readManifest reads dir's kmodtest.json, or returns nil, nil when dir
// has none. Unknown fields are errors: a misspelt field would otherwise
// be silently ignored.
func readManifest(dir string) (*Manifest, error) {
	file := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, jsonError(file, data, dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: line %d: text after the manifest's object: remove it", file, lineAt(data, dec.InputOffset()))
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &m, nil
}

// jsonError names the file, the line and the fix of a decoding error.
func jsonError(file string, data []byte, off int64, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s: line %d: %v: fix the JSON syntax", file, lineAt(data, se.Offset), err)
	case errors.As(err, &te):
		return fmt.Errorf("%s: line %d: field %s must be %s, not a JSON %s", file, lineAt(data, te.Offset), te.Field, jsonKind(te.Type.String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The decoder stops after the field's value: find its name.
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if i := bytes.LastIndex(data[:min(off, int64(len(data)))], []byte(field)); i >= 0 {
			off = int64(i)
		}
		return fmt.Errorf("%s: line %d: %s: the fields are name, make, modules, warnings_fail, extra_warnings, tests, kunit (see docs/projects.md)",
			file, lineAt(data, off), strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: the manifest ends early: it must be one JSON object, {} at least", file)
	}
	return fmt.Errorf("%s: line %d: %w", file, lineAt(data, off), err)
}

// jsonKind says a Go type the way a JSON writer knows it.
func jsonKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	}
	return "an object"
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// validate checks what JSON cannot: names present and unique, sensible
// values.
func (m *Manifest) validate() error {
	seen := map[string]bool{}
	for i, mod := range m.Modules {
		if mod.Name == "" || strings.ContainsAny(mod.Name, "/ \t") || strings.HasSuffix(mod.Name, ".ko") {
			return fmt.Errorf("modules[%d]: name %q: give the module's name, without .ko or a directory (location says where it is built)", i, mod.Name)
		}
		if seen[mod.Name] {
			return fmt.Errorf("modules[%d]: module %s is listed twice: list each module once, in load order", i, mod.Name)
		}
		seen[mod.Name] = true
		if filepath.IsAbs(mod.Location) || strings.HasPrefix(filepath.Clean(mod.Location), "..") {
			return fmt.Errorf("modules[%d] (%s): location %q must be a directory inside the project", i, mod.Name, mod.Location)
		}
		sets := map[string]bool{}
		for j, p := range mod.Params {
			if p.Name == "" || sets[p.Name] {
				return fmt.Errorf("modules[%d] (%s): params[%d]: give each parameter set a name of its own", i, mod.Name, j)
			}
			sets[p.Name] = true
			for _, a := range p.Args {
				if k, _, ok := strings.Cut(a, "="); !ok || k == "" || strings.ContainsAny(a, " \t") {
					return fmt.Errorf("modules[%d] (%s): params %s: argument %q: write name=value, one per list item", i, mod.Name, p.Name, a)
				}
			}
		}
	}
	tests := map[string]bool{}
	for i, t := range m.Tests {
		if t.Name == "" || tests[t.Name] || strings.ContainsAny(t.Name, "/ \t") {
			return fmt.Errorf("tests[%d]: give each test a name of its own, without spaces or /", i)
		}
		tests[t.Name] = true
		if len(t.Run) == 0 {
			return fmt.Errorf("tests[%d] (%s): run is empty: give the command and its arguments as a list", i, t.Name)
		}
		if t.Timeout != "" {
			if d, err := time.ParseDuration(t.Timeout); err != nil || d <= 0 {
				return fmt.Errorf("tests[%d] (%s): timeout %q: write a Go duration such as \"30s\"", i, t.Name, t.Timeout)
			}
		}
		if t.Go != "" && len(t.C) > 0 {
			return fmt.Errorf("tests[%d] (%s): give go or c, not both", i, t.Name)
		}
		for _, src := range t.C {
			if filepath.IsAbs(src) || strings.HasPrefix(filepath.Clean(src), "..") {
				return fmt.Errorf("tests[%d] (%s): c source %q must be a file inside the project", i, t.Name, src)
			}
		}
		if t.Go != "" && !strings.HasPrefix(t.Go, "./") {
			return fmt.Errorf("tests[%d] (%s): go %q: give the package's directory inside the project, starting with ./ (\"./cmd/ctltest\")", i, t.Name, t.Go)
		}
	}
	suites := map[string]bool{}
	for i, s := range m.KUnit {
		if s == "" || suites[s] || strings.ContainsAny(s, "/ \t") {
			return fmt.Errorf("kunit[%d]: %q: name each KUnit suite once, as in /sys/kernel/debug/kunit", i, s)
		}
		suites[s] = true
	}
	return nil
}
