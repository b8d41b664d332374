package kernelio

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FailNth is the per-thread fault injection knob (CONFIG_FAULT_INJECTION):
// writing N makes the N-th fault point the thread passes fail; it reads
// back 0 once the fault was injected.
const FailNth = "/proc/thread-self/fail-nth"

// failslab's knobs: GFP_KERNEL allocations are only failed with
// ignore-gfp-wait off, and verbose 0 keeps the injections from printing
// a stack trace each (which would read as a kernel report).
var failslabSettings = map[string]string{
	Debugfs + "/failslab/ignore-gfp-wait": "N",
	Debugfs + "/failslab/verbose":         "0",
}

// FailNthFile is the calling thread's fail-nth, opened once so that no
// open() runs between setting it and the send.
type FailNthFile struct{ fd int }

func OpenFailNth() (*FailNthFile, error) {
	fd, err := unix.Open(FailNth, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &FailNthFile{fd: fd}, nil
}

func (f *FailNthFile) Set(n int) error {
	_, err := unix.Pwrite(f.fd, []byte(strconv.Itoa(n)), 0)
	return err
}

func (f *FailNthFile) Get() (int, error) {
	var buf [32]byte
	n, err := unix.Pread(f.fd, buf[:], 0)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(buf[:n])))
}

func (f *FailNthFile) Close() error { return unix.Close(f.fd) }

// SetFailslab applies failslabSettings and returns a function that
// restores the old values. Without the files (no FAULT_INJECTION_DEBUG_FS)
// only allocations that cannot sleep are failed, which note says.
func SetFailslab() (restore func(), note string) {
	old := map[string][]byte{}
	for path, v := range failslabSettings {
		data, err := os.ReadFile(path)
		if err != nil {
			note = "no " + path + ": GFP_KERNEL allocations are not failed"
			continue
		}
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			note = fmt.Sprintf("write %s: %v", path, err)
			continue
		}
		old[path] = data
	}
	return func() {
		for path, data := range old {
			_ = os.WriteFile(path, data, 0)
		}
	}, note
}
