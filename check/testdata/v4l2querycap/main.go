// Command querycap is v4l2loopback's test in check.TestDebianDKMS: the
// device answers VIDIOC_QUERYCAP naming its driver. Built by kmodtest
// check for the guest (CGO_ENABLED=0), from a temporary copy of the
// package with this directory and a kmodtest.json added.
package main

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// vidiocQuerycap is VIDIOC_QUERYCAP, _IOR('V', 0, struct
// v4l2_capability), the struct being 104 bytes.
const vidiocQuerycap = 0x80685600

// capability is struct v4l2_capability (linux/videodev2.h).
type capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: querycap DEVICE DRIVER")
		os.Exit(2)
	}
	dev, want := os.Args[1], os.Args[2]
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer f.Close()
	var c capability
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), vidiocQuerycap, uintptr(unsafe.Pointer(&c))); errno != 0 {
		fmt.Printf("%s: VIDIOC_QUERYCAP: %v\n", dev, errno)
		os.Exit(1)
	}
	driver := string(bytes.TrimRight(c.Driver[:], "\x00"))
	card := string(bytes.TrimRight(c.Card[:], "\x00"))
	fmt.Printf("%s: driver %q, card %q, capabilities %#x\n", dev, driver, card, c.Capabilities)
	if driver != want {
		fmt.Printf("%s: driver %q, want %q\n", dev, driver, want)
		os.Exit(1)
	}
}
