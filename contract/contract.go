// Package contract is the contract between the guest prober and the host: the
// configuration the host puts into the initramfs, the names of the steps, and
// the JSON event lines the prober writes to its result port.
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

// ResultPort is the serial device the prober writes its events to. The host
// gives the guest a second UART for it so that kernel messages on the
// console (ttyS0) never interleave with results.
const ResultPort = "/dev/ttyS1"

// VirtioResultPort is the result port on machines with a single UART
// (arm64's virt): a virtio console, whose driver the prober may have to
// load first (Config.PortModules).
const VirtioResultPort = "/dev/hvc0"

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
}

// ShellCommands are the commands of kmodtest shell's guest, by path. Each
// is a u-root shellbang file: the kernel runs /bbin/bb with the word after
// "#!", bb dispatches to the prober, and the prober finds the command's
// name in os.Args[1].
var ShellCommands = []string{"/bin/probe", "/bin/greet"}

// ShellScript is the content of every file in ShellCommands.
const ShellScript = "#!/bbin/bb #!/bbin/prober\n"

// Step names. Each is a subtest name on the host, so they are short,
// stable and free of slashes.
const (
	StepInsmod            = "insmod"
	StepReply             = "reply"
	StepAck               = "ack"
	StepNoReplyWithoutAck = "no-reply-without-ack"
	StepOriginalClient    = "original-client"
	StepRmmod             = "rmmod"
	StepSocketGone        = "socket-gone"
)

// Scenario steps: hostile input, concurrency, memory and lifecycle. They
// run between StepOriginalClient and StepRmmod with the module loaded,
// except the lifecycle ones that load and unload it themselves.
const (
	StepGreetingLog      = "greeting-log"       // the greeting's log line: exact text, 64-byte cap, rate limit
	StepDebugLog         = "debug-log"          // the pr_debug lines, through dynamic debug
	StepShortDatagrams   = "short-datagrams"    // 0 to 15 byte datagrams: dropped, no answer
	StepBadLength        = "bad-length"         // nlmsg_len < header or > datagram: dropped
	StepEmptyGreeting    = "empty-greeting"     // no text: -EINVAL, with and without NLM_F_ACK
	StepTextLimits       = "text-limits"        // 1024 bytes served, 1025: -EINVAL
	StepHugePayload      = "huge-payload"       // payload far beyond NLMSG_GOODSIZE: -EINVAL
	StepNoNUL            = "no-nul"             // text without a NUL: served whole
	StepHighBytes        = "high-bytes"         // UTF-8 and bytes 0x80-0xff: served like any text
	StepControlTypes     = "control-types"      // types < NLMSG_MIN_TYPE: acked if asked, else nothing
	StepUnknownType      = "unknown-type"       // other types: -EOPNOTSUPP
	StepBatch            = "batch"              // several messages in one datagram, answered in order
	StepSpoofedPid       = "spoofed-pid"        // nlmsg_pid 0 or another port: reply to the real port
	StepConcurrentSocket = "concurrent-sockets" // many goroutines, a socket each
	StepSharedSocket     = "shared-socket"      // many goroutines on one socket
	StepNeverReads       = "never-reads"        // flood without reading: ENOBUFS at most
	StepLeak             = "leak"               // many greetings: unreclaimable slab must not grow
	StepRmmodBusy        = "rmmod-busy"         // rmmod with a socket open fails, module intact
	StepUnprivileged     = "unprivileged"       // a sender running as nobody is served
	StepNetns            = "netns"              // a sender in a new network namespace is served
	StepNetnsDeleted     = "netns-deleted"      // a namespace created and deleted while loaded
	StepReload           = "reload"             // unload and load again several times
	StepAllocFailures    = "alloc-failures"     // every allocation of a greeting failed in turn (fail-nth)
	StepModuleParam      = "module-param"       // protocol= out of range, taken, and another free one
	StepCoverage         = "coverage"           // hands the module's gcov data to the host
)

// CoreSteps is the core load, greet, ack and unload sequence: what
// `-steps core` (the default) runs.
var CoreSteps = []string{
	StepInsmod,
	StepReply,
	StepAck,
	StepNoReplyWithoutAck,
	StepOriginalClient,
	StepRmmod,
	StepSocketGone,
}

// FullSteps is CoreSteps with every scenario, in the order they run.
var FullSteps = []string{
	StepInsmod,
	StepReply,
	StepAck,
	StepNoReplyWithoutAck,
	StepOriginalClient,
	StepGreetingLog,
	StepDebugLog,
	StepShortDatagrams,
	StepBadLength,
	StepEmptyGreeting,
	StepTextLimits,
	StepHugePayload,
	StepNoNUL,
	StepHighBytes,
	StepControlTypes,
	StepUnknownType,
	StepBatch,
	StepSpoofedPid,
	StepUnprivileged,
	StepNetns,
	StepNetnsDeleted,
	StepConcurrentSocket,
	StepSharedSocket,
	StepNeverReads,
	StepLeak,
	StepAllocFailures,
	StepRmmodBusy,
	StepRmmod,
	StepSocketGone,
	StepReload,
	StepModuleParam,
	StepCoverage,
}

// NeedsModule reports whether step needs the module that the insmod step
// loads: every step but insmod does (the lifecycle steps unload and load
// it again, but start from it loaded). After a failed insmod the prober
// skips them, saying so, rather than failing each for the same cause.
func NeedsModule(step string) bool { return step != StepInsmod }

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
