// Package contract is what the guest prober and the host agree on: the
// configuration the host puts into the initramfs, the step table (names,
// timeouts, expected log lines, which steps need the module) and the
// host's silence limit derived from it, the ports, the job format, the
// taint table, and the JSON event lines the prober writes to its result
// port.
//
// It is imported by both sides, so it holds data and encoding only: nothing
// that runs a VM and nothing that talks netlink.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ConfigPath is where the host places the prober's configuration inside the
// initramfs.
const ConfigPath = "/etc/kmodtest/probe.json"

// KmsgMarker, followed by the step's name, is what the prober writes to
// the kernel log before each step: the start of the step's log window.
const KmsgMarker = "kmodtest: begin step "

// ConsoleBegin returns the line the prober prints on the console (ttyS0)
// when step begins. Unlike the kmsg marker, it reaches the console
// whatever the kernel's console log level, so the host can find where a
// step's console output starts.
func ConsoleBegin(step string) string { return "kmodtest: step " + step + ": begin" }

// Config tells the prober what to load and which steps to run.
type Config struct {
	// ModulePath is the module file inside the initramfs.
	ModulePath string `json:"module_path"`
	// ModuleName is the name the kernel knows the module by (for rmmod).
	ModuleName string `json:"module_name"`
	// Protocol is the netlink protocol number the module listens on.
	Protocol int `json:"protocol"`
	// Steps lists the steps to run, in order. Empty means CoreSteps.
	Steps []string `json:"steps,omitempty"`
	// ResultPort is the device to write events to; empty means
	// ResultPort.
	ResultPort string `json:"result_port,omitempty"`
	// PortModules are kernel modules (paths inside the initramfs) that
	// the prober loads, in order, before it opens the result port: the
	// port's drivers, on kernels that build them as modules.
	PortModules []string `json:"port_modules,omitempty"`
	// JobPort, when set, makes the prober wait for a Job on this serial
	// device before it runs anything: the host snapshots the guest while
	// it waits and restores the snapshot for each run (see job.go).
	JobPort string `json:"job_port,omitempty"`
	// Shell makes the prober load the module and hand the console to an
	// interactive shell instead of running steps; leaving the shell
	// powers the guest off.
	Shell bool `json:"shell,omitempty"`
	// Slowdown multiplies every step's timeout (0 means 1): a sanitizer
	// kernel under TCG runs the same steps several times slower.
	Slowdown int `json:"slowdown,omitempty"`
	// GcovSnapshots makes the prober send the module's gcov data (its
	// .gcda, cumulative since the first load) with the end event of
	// every step, so that the host can tell which lines each step ran.
	// The host sets it when the module was built with gcov profiling.
	GcovSnapshots bool `json:"gcov_snapshots,omitempty"`
	// Project, when set, makes the prober check a module project's
	// modules with generic steps (project.go) instead of running Steps.
	Project *ProjectJob `json:"project,omitempty"`
}

// ShellCommands are the commands of kmodtest shell's guest, by path. Each
// is a u-root shellbang file: the kernel runs /bbin/bb with the word after
// "#!", bb dispatches to the prober, and the prober finds the command's
// name in os.Args[1].
var ShellCommands = []string{"/bin/probe", "/bin/greet"}

// ShellScript is the content of every file in ShellCommands.
const ShellScript = "#!/bbin/bb #!/bbin/prober\n"

// Event kinds.
const (
	// KindBegin is written before a step runs, so that the host can name
	// the step that was running when the guest panicked or hung.
	KindBegin = "begin"
	// KindEnd carries the step's result.
	KindEnd = "end"
	// KindDone is written once after the last step, before power-off.
	KindDone = "done"
	// KindReady is written by a prober in job mode (Config.JobPort)
	// once it waits for its job: the moment the host snapshots.
	KindReady = "ready"
	// KindLoaded is written by a prober in shell mode (Config.Shell)
	// after it loaded the module, with the module's section addresses
	// (for gdb's add-symbol-file).
	KindLoaded = "loaded"
)

// Status values of a finished step.
const (
	StatusPass = "pass"
	StatusFail = "fail"
	StatusSkip = "skip"
)

// Event is one line on the result port.
type Event struct {
	Kind   string `json:"kind"`
	Step   string `json:"step,omitempty"`
	Status string `json:"status,omitempty"`
	// Detail says what went wrong (want/got) or why a step was skipped.
	Detail string `json:"detail,omitempty"`
	// Kmsg holds the kernel log records printed while the step ran,
	// read from /dev/kmsg between a mark written before the step and
	// the end of the step.
	Kmsg []string `json:"kmsg,omitempty"`
	// TaintBefore and TaintAfter are /proc/sys/kernel/tainted around
	// the step.
	TaintBefore uint64 `json:"taint_before"`
	TaintAfter  uint64 `json:"taint_after"`
	// Kernel is the guest's uname release, sent with KindBegin of the
	// first step and with KindDone.
	Kernel     string `json:"kernel,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	// Sections maps the loaded module's ELF sections to their addresses
	// (/sys/module/NAME/sections), with KindLoaded.
	Sections map[string]string `json:"sections,omitempty"`
	// Files carries data the host needs from the guest, by guest path
	// (the module's gcov .gcda from StepCoverage, and from every step
	// with Config.GcovSnapshots), base64 in JSON.
	Files map[string][]byte `json:"files,omitempty"`
	// RoundTrips is the round-trip step's measurement.
	RoundTrips *RoundTrips `json:"round_trips,omitempty"`
	// Blame fails earlier steps for what a later check found they did
	// (kmemleak reports an object only seconds after it was lost, in
	// the scan after a later step).
	Blame []Blame `json:"blame,omitempty"`
}

// A Blame is a reason to fail an earlier step, found during this one.
type Blame struct {
	Step   string `json:"step"`
	Reason string `json:"reason"`
}

// Marshal encodes e as one line: Prefix, JSON, newline.
func (e Event) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s event for step %q: %w", e.Kind, e.Step, err)
	}
	line := append([]byte(Prefix), b...)
	return append(line, '\n'), nil
}

// Prefix starts every event line, so that the host can pick events out of
// a port that also carries noise (for instance a getty banner or a line
// cut short by a panic).
const Prefix = "KMODTEST "

// ParseLine decodes one result-port line. ok is false for lines that are
// not events (no Prefix); err is set for event lines that do not decode.
func ParseLine(line []byte) (e Event, ok bool, err error) {
	line = bytes.TrimRight(line, "\r\n")
	i := bytes.Index(line, []byte(Prefix))
	if i < 0 {
		return Event{}, false, nil
	}
	if err := json.Unmarshal(line[i+len(Prefix):], &e); err != nil {
		return Event{}, true, fmt.Errorf("decode event line %q: %w", line, err)
	}
	return e, true, nil
}
