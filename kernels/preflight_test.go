package kernels

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// fakeTool puts an executable shell script named name first on PATH.
func fakeTool(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// preflightFixture is a non-root preflight on a fake /proc/sys and /etc
// with one kernel that needs a (cold) build root.
func preflightFixture(t *testing.T, procSys map[string]string, subids bool) (*Preflight, *Cache, []Kernel) {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "gpgv", "make", "mmdebstrap", "newuidmap", "newgidmap"} {
		if err := proc.NeedTool(tool); err != nil {
			t.Skip(err)
		}
	}
	proc := t.TempDir()
	for name, v := range procSys {
		os.MkdirAll(filepath.Dir(filepath.Join(proc, name)), 0o755)
		os.WriteFile(filepath.Join(proc, name), []byte(v+"\n"), 0o644)
	}
	etc := t.TempDir()
	if subids {
		me := currentUser(t)
		os.WriteFile(filepath.Join(etc, "subuid"), []byte(me+":100000:65536\n"), 0o644)
		os.WriteFile(filepath.Join(etc, "subgid"), []byte(me+":100000:65536\n"), 0o644)
	}
	self := t.TempDir()
	os.WriteFile(filepath.Join(self, "mountinfo"), []byte("27 1 254:0 / / rw - ext4 /dev/vda rw\n"), 0o644)
	p := &Preflight{ProcSys: proc, ProcSelf: self, EtcDir: etc, Euid: 1000, KernelSpace: 1, RootSpace: 1}
	root := &BuildRoot{Name: "trixie", Suite: "trixie", Apt: []string{"deb {mirror} trixie main"}, Packages: []string{"gcc-14"}}
	k := Kernel{Name: "6.12", Suite: "trixie", Toolchain: "trixie", Root: root}
	return p, &Cache{Dir: t.TempDir()}, []Kernel{k}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	return u.Username
}

// TestPreflightUbuntuUserns: under Ubuntu's AppArmor rule unshare -r
// fails; the preflight says so at once, with the sysctl, the AppArmor
// profile for unshare and running as root as fixes.
func TestPreflightUbuntuUserns(t *testing.T) {
	fakeTool(t, "unshare", `echo "unshare: write failed /proc/self/uid_map: Operation not permitted" >&2; exit 1`)
	p, c, sel := preflightFixture(t, map[string]string{"kernel/apparmor_restrict_unprivileged_userns": "1", "user/max_user_namespaces": "63000"}, true)
	err := p.Run(t.Context(), c, sel)
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Problems) != 1 {
		t.Fatalf("want one preflight problem, got %v", err)
	}
	for _, want := range []string{
		"write failed /proc/self/uid_map: Operation not permitted",
		"build root (kernels 6.12) needs them",
		"sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
		"profile kmodtest-unshare /usr/bin/unshare flags=(unconfined) {",
		"userns,",
		"apparmor_parser -r",
		"or run as root",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "max_user_namespaces") {
		t.Errorf("a fix for a rule this host does not have:\n%v", err)
	}
}

// TestPreflightNoUserns: a host allowing no user namespaces at all (what
// /work/shared/tools/userns-off makes) and no subordinate ids: both
// problems in one message.
func TestPreflightNoUserns(t *testing.T) {
	fakeTool(t, "unshare", `echo "unshare: unshare failed: No space left on device" >&2; exit 1`)
	p, c, sel := preflightFixture(t, map[string]string{"user/max_user_namespaces": "0"}, false)
	err := p.Run(t.Context(), c, sel)
	var pe *PreflightError
	if !errors.As(err, &pe) || len(pe.Problems) != 2 {
		t.Fatalf("want two problems, got %v", err)
	}
	for _, want := range []string{"sudo sysctl -w user.max_user_namespaces=15000", "subuid and " + p.EtcDir + "/subgid has no entry", "usermod --add-subuids"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "apparmor") {
		t.Errorf("AppArmor fix on a host without the rule:\n%v", err)
	}
}

// TestPreflightPasses: with user namespaces, subordinate ids, the tools
// and space, nothing is reported; as root, user namespaces are not tried.
func TestPreflightPasses(t *testing.T) {
	fakeTool(t, "unshare", `exit 0`)
	p, c, sel := preflightFixture(t, nil, true)
	if err := p.Run(t.Context(), c, sel); err != nil {
		t.Fatalf("healthy host refused: %v", err)
	}
	fakeTool(t, "unshare", `exit 1`)
	p.Euid = 0
	if err := p.Run(t.Context(), c, sel); err != nil {
		t.Fatalf("root needs no user namespaces, got %v", err)
	}
}

func TestPreflightToolsAndSpace(t *testing.T) {
	fakeTool(t, "unshare", `exit 0`)
	p, c, sel := preflightFixture(t, nil, true)
	p.Tools = []string{"kmodtest-no-such-qemu"}
	p.KernelSpace = 1 << 62
	err := p.Run(t.Context(), c, sel)
	for _, want := range []string{"kmodtest-no-such-qemu not found", "disk space: ", "set KMODTEST_CACHE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

// TestPreflightInChroot: a normal user in a chroot cannot create user
// namespaces whatever the sysctls say; the message says why.
func TestPreflightInChroot(t *testing.T) {
	fakeTool(t, "unshare", `echo "unshare: unshare failed: Operation not permitted" >&2; exit 1`)
	p, c, sel := preflightFixture(t, nil, true)
	os.WriteFile(filepath.Join(p.ProcSelf, "mountinfo"), []byte("46 27 0:41 / /proc rw - proc proc rw\n"), 0o644)
	err := p.Run(t.Context(), c, sel)
	if err == nil || !strings.Contains(err.Error(), "runs in a chroot") || strings.Contains(err.Error(), "allow unprivileged user namespaces on this host") {
		t.Fatalf("want the chroot named as the cause, got %v", err)
	}
}
