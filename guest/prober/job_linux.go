package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"golang.org/x/sys/unix"
)

// waitForJob tells the host that the prober is ready, then blocks until
// the host sends a job on cfg.JobPort. The host snapshots the guest while
// it waits here, and every restored copy resumes in this read, so one boot
// serves many runs, each on a fresh copy of the same kernel state.
// It writes the job's module to cfg.ModulePath and sets cfg.Steps.
func waitForJob(rep *reporter, cfg *contract.Config) error {
	port, err := openJobPort(cfg.JobPort)
	if err != nil {
		return fmt.Errorf("open job port: %w", err)
	}
	defer port.Close()
	rep.ready()
	job, module, err := contract.ReadJob(port)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.ModulePath), 0o755); err != nil {
		return fmt.Errorf("store module: %w", err)
	}
	if err := os.WriteFile(cfg.ModulePath, module, 0o644); err != nil {
		return fmt.Errorf("store module: %w", err)
	}
	if len(job.Steps) > 0 {
		cfg.Steps = job.Steps
	}
	cfg.GcovSnapshots = cfg.GcovSnapshots || job.GcovSnapshots
	return nil
}

// jobPortWait bounds the wait for a job port that is not there yet.
const jobPortWait = 5 * time.Second

// openJobPort opens the job port, waiting for it to appear: arm64's is a
// second virtio console (hvc1), which opens (no ENODEV) only once the
// driver has handled the host's announcement of the port, possibly after
// the result port (hvc0) that PreparePort waited for. A UART is there at
// once.
func openJobPort(path string) (*os.File, error) {
	end := time.Now().Add(jobPortWait)
	for {
		f, err := openInputPort(path)
		if err == nil || !(errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO)) {
			return f, err
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("%w after %s", err, jobPortWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openInputPort opens a serial device for reading in raw mode: no echo,
// no line editing, every byte as it comes.
func openInputPort(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := makeRaw(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw mode on %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// makeRaw switches a tty to raw mode so that the line discipline passes
// bytes through unchanged in both directions.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
