package kbuild

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHeadersCCText(t *testing.T) {
	kdir := t.TempDir()
	if _, err := headersCCText(kdir); err == nil {
		t.Fatal("headers without a config gave a compiler")
	}
	os.WriteFile(filepath.Join(kdir, ".config"), []byte("CONFIG_X=y\nCONFIG_CC_VERSION_TEXT=\"gcc-14 (Debian 14.2.0-19) 14.2.0\"\n"), 0o644)
	got, err := headersCCText(kdir)
	if err != nil || got != "gcc-14 (Debian 14.2.0-19) 14.2.0" {
		t.Fatalf(".config: got %q, %v", got, err)
	}
	os.MkdirAll(filepath.Join(kdir, "include", "config"), 0o755)
	os.WriteFile(filepath.Join(kdir, "include", "config", "auto.conf"), []byte("CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\n"), 0o644)
	if got, _ := headersCCText(kdir); got != "gcc-12 (Debian 12.2.0-14) 12.2.0" {
		t.Fatalf("auto.conf must win: got %q", got)
	}
}

// TestRootIsMountPoint: inside a chroot whose root is no mount point,
// mountinfo lists no "/" mount and builds must not ask unshare for
// private propagation (it fails there with EINVAL).
func TestRootIsMountPoint(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host")
	os.WriteFile(host, []byte("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n22 27 0:21 / /proc rw - proc proc rw\n"), 0o644)
	chroot := filepath.Join(dir, "chroot")
	os.WriteFile(chroot, []byte("46 27 0:41 / /proc rw,relatime - proc proc rw\n47 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw\n"), 0o644)
	if !RootIsMountPoint(host) {
		t.Error("host mountinfo: / not found")
	}
	if RootIsMountPoint(chroot) {
		t.Error("chroot mountinfo: / reported as a mount point")
	}
}
