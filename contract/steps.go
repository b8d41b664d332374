package contract

import (
	"fmt"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/greet"
)

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
	StepBatch            = "batch"              // up to 40 mixed messages in one datagram, each answered, in order
	StepSpoofedPid       = "spoofed-pid"        // nlmsg_pid 0 or another port: reply to the real port
	StepConcurrentSocket = "concurrent-sockets" // many goroutines, a socket each
	StepSharedSocket     = "shared-socket"      // many goroutines on one socket
	StepNeverReads       = "never-reads"        // flood without reading: ENOBUFS at most
	StepLeak             = "leak"               // many greetings: unreclaimable slab must not grow
	StepRmmodBusy        = "rmmod-busy"         // rmmod with a socket open fails, module intact
	StepUnprivileged     = "unprivileged"       // a sender running as nobody is served
	StepNetns            = "netns"              // a sender in a new network namespace is served
	StepNetnsDeleted     = "netns-deleted"      // a namespace created and deleted while loaded
	StepUnprivNetns      = "unprivileged-netns" // a sender as nobody in a network namespace root made
	StepUsernsNetns      = "userns-netns"       // a sender as nobody in a user and network namespace it made
	StepJoinedNetns      = "joined-netns"       // a sender that joined another process's network namespace
	StepNetnsFreed       = "netns-freed"        // a served network namespace is freed once unused
	StepReload           = "reload"             // unload and load again several times
	StepAllocFailures    = "alloc-failures"     // every allocation of a greeting failed in turn (fail-nth)
	StepNetnsFaults      = "netns-faults"       // every allocation of a new network namespace failed in turn (fail-nth)
	StepInsmodFaults     = "insmod-faults"      // every allocation of insmod failed in turn (fail-nth): a clean failure or a full load
	StepModuleParam      = "module-param"       // protocol= out of range, taken, and another free one
	StepCoverage         = "coverage"           // hands the module's gcov data to the host
	StepRoundTrip        = "round-trip"         // acked greetings timed next to the kernel's own round trip (speed.go)
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

// A Step is one row of the step table: what the host and the prober
// agree on about a step. The prober holds only how to run it.
type Step struct {
	Name string
	// Timeout bounds the step in the guest, times Config.Slowdown; the
	// prober abandons a step that ignores it StepGrace later.
	Timeout time.Duration
	// NeedsModule is set for the steps that need the module the insmod
	// step loads. After a failed insmod the prober skips them, saying
	// so, rather than failing each for the same cause.
	NeedsModule bool
	// Log is the line the module must print to the kernel log during the
	// step ("" for none): the host checks it (verdict.Judge).
	Log string
	// InjectsFaults is set for the steps that fail allocations on
	// purpose (fail-nth): the kernel's warning that an allocation failed,
	// with its stack dump, is then the expected outcome, not a report.
	InjectsFaults bool
	// Progress is set for the steps whose prober writes a progress line
	// at least every few seconds while they run (the fault sweeps): the
	// host's silence limit need not cover their timeout.
	Progress bool
}

// Step timeouts: most steps answer within seconds; the floods, the leak
// check, the fault injection and the reloads get longer.
const (
	shortStep = 30 * time.Second
	longStep  = 60 * time.Second
	// sweepStep bounds a fault sweep over the module's setup: each of
	// its hundreds of injections loads the module or creates a namespace.
	sweepStep = 120 * time.Second
)

// StepGrace is how long the prober waits for a step that ignores its
// timeout before it abandons the step and reports it failed.
const StepGrace = 5 * time.Second

// ProtocolOutOfRange is the protocol the module-param step tries first:
// the module must refuse it with the greet.LogBadProtocol line.
const ProtocolOutOfRange = 32

// Steps is the step table: every step, in the order a full run runs them.
var Steps = []Step{
	{Name: StepInsmod, Timeout: shortStep, Log: fmt.Sprintf(greet.LogLoaded, greet.Protocol)},
	{Name: StepReply, Timeout: shortStep, NeedsModule: true},
	{Name: StepAck, Timeout: shortStep, NeedsModule: true},
	{Name: StepNoReplyWithoutAck, Timeout: shortStep, NeedsModule: true},
	{Name: StepOriginalClient, Timeout: shortStep, NeedsModule: true},
	// The steps that check that invalid greetings are not logged come
	// first: each proves it with one logged marker greeting, and the
	// greeting line's rate limit (10 lines per 5 s) has room for all
	// four only before greeting-log floods it. Later, each would wait
	// up to 5 s for a new interval.
	{Name: StepEmptyGreeting, Timeout: shortStep, NeedsModule: true},
	{Name: StepHugePayload, Timeout: shortStep, NeedsModule: true},
	{Name: StepUnknownType, Timeout: shortStep, NeedsModule: true},
	{Name: StepTextLimits, Timeout: shortStep, NeedsModule: true},
	{Name: StepGreetingLog, Timeout: shortStep, NeedsModule: true},
	{Name: StepDebugLog, Timeout: shortStep, NeedsModule: true},
	{Name: StepShortDatagrams, Timeout: shortStep, NeedsModule: true},
	{Name: StepBadLength, Timeout: shortStep, NeedsModule: true},
	{Name: StepNoNUL, Timeout: shortStep, NeedsModule: true},
	{Name: StepHighBytes, Timeout: shortStep, NeedsModule: true},
	{Name: StepControlTypes, Timeout: shortStep, NeedsModule: true},
	{Name: StepBatch, Timeout: shortStep, NeedsModule: true},
	{Name: StepSpoofedPid, Timeout: shortStep, NeedsModule: true},
	{Name: StepRoundTrip, Timeout: shortStep, NeedsModule: true},
	{Name: StepUnprivileged, Timeout: shortStep, NeedsModule: true},
	{Name: StepNetns, Timeout: shortStep, NeedsModule: true},
	{Name: StepNetnsDeleted, Timeout: shortStep, NeedsModule: true},
	{Name: StepUnprivNetns, Timeout: shortStep, NeedsModule: true},
	{Name: StepUsernsNetns, Timeout: shortStep, NeedsModule: true},
	{Name: StepJoinedNetns, Timeout: shortStep, NeedsModule: true},
	{Name: StepNetnsFreed, Timeout: shortStep, NeedsModule: true},
	{Name: StepConcurrentSocket, Timeout: longStep, NeedsModule: true},
	{Name: StepSharedSocket, Timeout: longStep, NeedsModule: true},
	{Name: StepNeverReads, Timeout: longStep, NeedsModule: true},
	{Name: StepLeak, Timeout: longStep, NeedsModule: true},
	{Name: StepAllocFailures, Timeout: longStep, NeedsModule: true, InjectsFaults: true},
	{Name: StepNetnsFaults, Timeout: sweepStep, NeedsModule: true, InjectsFaults: true, Progress: true},
	{Name: StepRmmodBusy, Timeout: shortStep, NeedsModule: true},
	{Name: StepRmmod, Timeout: shortStep, NeedsModule: true, Log: greet.LogUnloaded},
	{Name: StepSocketGone, Timeout: shortStep, NeedsModule: true},
	// Starts and ends with the module unloaded.
	{Name: StepInsmodFaults, Timeout: sweepStep, NeedsModule: true, InjectsFaults: true, Progress: true},
	// The lifecycle steps unload and load the module again, but start
	// from it loaded.
	{Name: StepReload, Timeout: longStep, NeedsModule: true},
	{Name: StepModuleParam, Timeout: shortStep, NeedsModule: true, Log: fmt.Sprintf(greet.LogBadProtocol, ProtocolOutOfRange)},
	{Name: StepCoverage, Timeout: shortStep, NeedsModule: true},
}

// FullSteps is CoreSteps with every scenario, in the order they run: the
// names of Steps.
var FullSteps = stepNames(Steps)

func stepNames(steps []Step) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return names
}

// LookupStep returns the row of the step table named name.
func LookupStep(name string) (Step, bool) {
	for _, s := range Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// NeedsModule reports whether step needs the module that the insmod step
// loads (Step.NeedsModule); an unknown step does.
func NeedsModule(step string) bool {
	s, ok := LookupStep(step)
	return !ok || s.NeedsModule
}

// InjectsFaults reports whether step fails allocations on purpose
// (Step.InjectsFaults).
func InjectsFaults(step string) bool {
	if strings.HasPrefix(step, ProjectInitFaults+"/") {
		return true
	}
	s, ok := LookupStep(step)
	return ok && s.InjectsFaults
}

// StepTimeout returns how long the prober gives step on a kernel
// slowdown times slower than a stock one (0 counts as 1); an unknown
// step gets the short timeout.
func StepTimeout(step string, slowdown int) time.Duration {
	d := shortStep
	if s, ok := LookupStep(step); ok {
		d = s.Timeout
	}
	return d * time.Duration(max(slowdown, 1))
}

// ExpectedLogs maps each step that has one to the line the module must
// print during it (Step.Log).
func ExpectedLogs() map[string]string {
	logs := map[string]string{}
	for _, s := range Steps {
		if s.Log != "" {
			logs[s.Name] = s.Log
		}
	}
	return logs
}

// afterStep bounds what the prober does between a step's timeout (plus
// StepGrace) and its end event: draining the step's kernel log, the gcov
// snapshot, and on kernels with kmemleak (the sanitizer kernels, whose
// slowdown multiplies it) the leak scan.
const afterStep = 25 * time.Second

// SilenceLimit is how long the host lets the prober stay silent (no event
// on the result port) before it calls the guest hung, on a kernel
// slowdown times slower than a stock one: above the longest step timeout
// and its grace, so that a slow step is reported by the prober, not as a
// hang (a Progress step is never silent that long). With slowdown 1 it
// is 90 s.
func SilenceLimit(slowdown int) time.Duration {
	var longest time.Duration
	for _, s := range Steps {
		if !s.Progress {
			longest = max(longest, s.Timeout)
		}
	}
	return (longest + StepGrace + afterStep) * time.Duration(max(slowdown, 1))
}
