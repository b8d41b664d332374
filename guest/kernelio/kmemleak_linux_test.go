package kernelio

import (
	"strings"
	"testing"
)

// A record of the sender's socket, kept by an extra reference, as
// 6.12-debug prints it (frames without their address).
const socketLeak = `unreferenced object 0xffff888006e01000 (size 2048):
  comm "uinit", pid 46, jiffies 4294895182
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
    10 00 07 40 00 00 00 00 00 00 00 00 00 00 00 00  ...@............
  backtrace (crc 41b3c609):
    __kmalloc_noprof+0x28b/0x4f0
    sk_prot_alloc.constprop.0+0x162/0x200
    sk_alloc+0x24/0x320
    __netlink_create+0x56/0x2b0
    netlink_create+0x2f2/0x5d0
`

// What the init-error-leak fixture leaves on 6.12-debug: allocated by
// the init of a module whose load then failed.
const initLeak = `unreferenced object 0xffff888004fbef60 (size 8):
  comm "uinit", pid 456, jiffies 4294955358
  hex dump (first 8 bytes):
    00 00 00 00 00 00 00 00                          ........
  backtrace (crc 0):
    __kmalloc_cache_noprof+0x1fd/0x390
    0xffffffffa001807b
    do_one_initcall+0xc0/0x360
    do_init_module+0x229/0x6b0
`

func TestParseKmemleak(t *testing.T) {
	objs, err := ParseKmemleak(socketLeak + kmemleakReport)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 4 {
		t.Fatalf("want 4 objects, got %d", len(objs))
	}
	o := objs[0]
	if o.Addr != "0xffff888006e01000" || o.Size != 2048 || o.Comm != "uinit" || o.PID != 46 || o.Jiffies != 4294895182 {
		t.Errorf("header fields: %+v", o)
	}
	if len(o.Backtrace) != 5 || o.Backtrace[3] != "__netlink_create+0x56/0x2b0" {
		t.Errorf("backtrace: %q", o.Backtrace)
	}
	if o.Record != strings.TrimRight(socketLeak, "\n") {
		t.Errorf("record:\n%s", o.Record)
	}
	if o.FromModule("NetlinkGreetingsLKM") {
		t.Error("the socket's allocation does not run through the module")
	}
	// Same code path, another object: same signature, other key.
	again := strings.Replace(socketLeak, "0xffff888006e01000", "0xffff888006e02000", 1)
	other, err := ParseKmemleak(again)
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Signature() != o.Signature() || other[0].Key() == o.Key() {
		t.Error("two objects of one allocation site: want equal signatures and different keys")
	}
}

func TestParseKmemleakUnloadedModule(t *testing.T) {
	objs, err := ParseKmemleak(initLeak)
	if err != nil || len(objs) != 1 {
		t.Fatalf("got %+v, %v", objs, err)
	}
	if got := objs[0].Backtrace; len(got) != 4 || got[1] != "0xffffffffa001807b" {
		t.Errorf("backtrace: %q", got)
	}
	if !objs[0].FromModule("NetlinkGreetingsLKM") {
		t.Error("a frame in the module area that no symbol names is the unloaded module's")
	}
}

func TestParseKmemleakOldFormat(t *testing.T) {
	// Before 6.6 kmemleak printed the age and a plain "backtrace:".
	objs, err := ParseKmemleak(`unreferenced object 0xffff88800412a000 (size 64):
  comm "prober", pid 70, jiffies 4294937000 (age 9.812s)
  backtrace:
    [<000000001f3a2b4c>] kmalloc_trace+0x26/0x90
`)
	if err != nil || len(objs) != 1 || objs[0].Jiffies != 4294937000 || len(objs[0].Backtrace) != 1 {
		t.Fatalf("got %+v, %v", objs, err)
	}
}

func TestParseKmemleakGarbage(t *testing.T) {
	if _, err := ParseKmemleak("kmemleak: not what we expected\n"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("want an error naming line 1, got %v", err)
	}
}

func TestHZFrom(t *testing.T) {
	// Jiffies start at 2^32 - 300*HZ; times(2) returns them in 1/100 s.
	for _, hz := range []uint64{100, 250, 300, 1000} {
		for _, uptime := range []float64{1.5, 300, 86400} {
			jiffies := uint64(1)<<32 - 300*hz + uint64(uptime*float64(hz))
			got, err := hzFrom(jiffies*userHZ/hz, uptime)
			if err != nil || got != hz {
				t.Errorf("HZ %d, uptime %.1f s: got %d, %v", hz, uptime, got, err)
			}
		}
	}
	if _, err := hzFrom(12345, 10); err == nil {
		t.Error("ticks not counted from INITIAL_JIFFIES: want an error")
	}
}

func TestJiffiesHere(t *testing.T) {
	// The host's own kernel: whatever its HZ, it must be found.
	j, err := Jiffies()
	if err != nil {
		t.Fatal(err)
	}
	if j < 1<<32-300*1000 {
		t.Errorf("jiffies %d below INITIAL_JIFFIES", j)
	}
}
