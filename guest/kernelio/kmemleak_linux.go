package kernelio

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A LeakObject is one record of kmemleak's report: an object that no
// pointer in memory refers to any more.
type LeakObject struct {
	Addr    string // "0xffff888005a1c340"
	Size    int
	Comm    string // the task that allocated it
	PID     int
	Jiffies uint64 // when it was allocated
	// Backtrace is the allocation's stack, one frame a line ("sk_alloc+0x24/0x320",
	// "0xffffffffa001807b" for code since unloaded), without the
	// "[<address>]" prefix kernels before 6.6 put before each.
	Backtrace []string
	// Record is kmemleak's whole record, as printed.
	Record string
}

// Key identifies the object itself: the same object reported by two
// scans has the same key.
func (o LeakObject) Key() string {
	return o.Addr + "\n" + strings.Join(o.Backtrace, "\n")
}

// Signature identifies where the object was allocated, not which object
// it is: two leaks of the same kernel code path share it.
func (o LeakObject) Signature() string {
	return fmt.Sprintf("size %d\n%s", o.Size, strings.Join(o.Backtrace, "\n"))
}

var (
	leakHeader = regexp.MustCompile(`^unreferenced object (0x[0-9a-f]+) \(size (\d+)\):$`)
	leakComm   = regexp.MustCompile(`^\s+comm "(.*)", pid (\d+), jiffies (\d+)`)
	leakTrace  = regexp.MustCompile(`^\s+backtrace( \(crc [0-9a-f]+\))?:$`)
	leakFrame  = regexp.MustCompile(`^\s+(?:\[<[0-9a-f]+>\] )?(\S.*)$`)
)

// ParseKmemleak splits the text of Debugfs/kmemleak into its objects. It
// reads the 6.x format (a "backtrace (crc …):" line) and the older one
// ("backtrace:", an age after the jiffies).
func ParseKmemleak(report string) ([]LeakObject, error) {
	var out []LeakObject
	var cur *LeakObject
	var record []string
	inTrace := false
	flush := func() {
		if cur != nil {
			cur.Record = strings.Join(record, "\n")
			out = append(out, *cur)
		}
	}
	for i, line := range strings.Split(report, "\n") {
		if m := leakHeader.FindStringSubmatch(line); m != nil {
			flush()
			size, _ := strconv.Atoi(m[2])
			cur = &LeakObject{Addr: m[1], Size: size}
			record = []string{line}
			inTrace = false
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("kmemleak report line %d: %q before any \"unreferenced object\" line", i+1, line)
		}
		record = append(record, line)
		if m := leakComm.FindStringSubmatch(line); m != nil {
			cur.Comm = m[1]
			cur.PID, _ = strconv.Atoi(m[2])
			j, err := strconv.ParseUint(m[3], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("kmemleak report line %d: jiffies: %w", i+1, err)
			}
			cur.Jiffies = j
		} else if leakTrace.MatchString(line) {
			inTrace = true
		} else if m := leakFrame.FindStringSubmatch(line); inTrace && m != nil {
			cur.Backtrace = append(cur.Backtrace, strings.TrimSpace(m[1]))
		}
	}
	flush()
	return out, nil
}

// KmemleakObjects asks kmemleak to scan and returns the objects it
// reports. With wait, it first waits for kmemleak's minimum age, so
// that what the last step allocated can be reported. kmemleak reports
// an object only from a scan that finds it unreferenced and unchanged
// since the scan before, so two scans follow the wait. Scanning during
// the wait does not save it: a stale pointer (on the stack of the task
// that just ran) hides an object from an early scan, which then records
// no checksum, and the object escapes the next scan too.
func KmemleakObjects(ctx context.Context, wait bool, scans int) ([]LeakObject, error) {
	if wait {
		t := time.NewTimer(kmemleakMinAge)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for range scans {
		if err := os.WriteFile(kmemleakPath, []byte("scan"), 0); err != nil {
			return nil, fmt.Errorf("kmemleak scan: %w", err)
		}
	}
	data, err := os.ReadFile(kmemleakPath)
	if err != nil {
		return nil, fmt.Errorf("read kmemleak report: %w", err)
	}
	return ParseKmemleak(string(data))
}

// FromModule reports whether the object's backtrace runs through module,
// or through code no longer loaded (an unloaded instance of the module:
// the only module the guest loads).
func (o LeakObject) FromModule(module string) bool {
	for _, f := range o.Backtrace {
		if strings.HasSuffix(f, "["+module+"]") || unloadedFrame.MatchString(f) {
			return true
		}
	}
	return false
}

// unloadedFrame is a frame kmemleak could not symbolize in the module area.
var unloadedFrame = regexp.MustCompile(`^0xffffffff[a-f][0-9a-f]{7}\s*$`)

// Jiffies returns the kernel's tick counter, which kmemleak stamps each
// object with, to within one USER_HZ tick (10 ms). No file shows it on
// the debug kernel (/proc/timer_list does only with a tickless kernel),
// but times(2) returns it in USER_HZ ticks; the kernel's HZ follows from
// where jiffies start (hzFrom).
func Jiffies() (uint64, error) {
	var tms unix.Tms
	ticks, err := unix.Times(&tms)
	if err != nil {
		return 0, fmt.Errorf("times: %w", err)
	}
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, fmt.Errorf("read jiffies: %w", err)
	}
	var uptime float64
	if _, err := fmt.Sscanf(string(data), "%g", &uptime); err != nil {
		return 0, fmt.Errorf("/proc/uptime %q: %w", data, err)
	}
	hz, err := hzFrom(uint64(ticks), uptime)
	if err != nil {
		return 0, err
	}
	return uint64(ticks) * hz / userHZ, nil
}

// userHZ is the unit of times(2) on every architecture the matrix has.
const userHZ = 100

// hzFrom finds the kernel's HZ from times(2) and the uptime: jiffies
// start at INITIAL_JIFFIES, 2^32 - 300*HZ (so that they wrap five minutes
// after boot on 32-bit), hence ticks = (2^32 - 300*HZ + HZ*uptime) *
// userHZ/HZ = 2^32*userHZ/HZ - 300*userHZ + userHZ*uptime.
func hzFrom(ticks uint64, uptime float64) (uint64, error) {
	rest := float64(ticks) + 300*userHZ - userHZ*uptime
	if rest <= 0 {
		return 0, fmt.Errorf("times(2) returned %d ticks at uptime %.2f s: not counted from INITIAL_JIFFIES", ticks, uptime)
	}
	est := float64(uint64(1)<<32) * userHZ / rest
	for _, hz := range []uint64{100, 250, 300, 1000} {
		if math.Abs(est-float64(hz)) < 1 {
			return hz, nil
		}
	}
	return 0, fmt.Errorf("times(2) returned %d ticks at uptime %.2f s: HZ would be %.1f, none of 100, 250, 300, 1000", ticks, uptime, est)
}
