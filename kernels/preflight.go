package kernels

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/kbuild"
	"golang.org/x/sys/unix"
)

// Space a cold entry takes while it is made (downloads and the unpacked
// tree, or mmdebstrap's tarball and the unpacked root, side by side).
const (
	kernelSpace = 600 << 20
	rootSpace   = 600 << 20
	spareSpace  = 200 << 20
)

// A PreflightError lists everything the host lacks for the chosen run,
// each problem with its fix, in one message.
type PreflightError struct {
	Problems []string
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	b.WriteString("preflight: this host cannot run the selected kernels yet (nothing was downloaded or built):")
	for i, p := range e.Problems {
		fmt.Fprintf(&b, "\n%d. %s", i+1, strings.ReplaceAll(p, "\n", "\n   "))
	}
	return b.String()
}

// A Preflight checks, before any long work, what fetching the selected
// kernels and building modules for them needs on this host: the tools,
// unprivileged user namespaces and subordinate ids when a build root is
// used without root, and the free space for what is not cached yet.
type Preflight struct {
	// Tools are programs the caller needs besides the kernels' own
	// (qemu-system-x86_64).
	Tools []string
	// ProcSys, ProcSelf and EtcDir are /proc/sys, /proc/self and /etc
	// (tests change them).
	ProcSys, ProcSelf, EtcDir string
	// Euid is the effective user id the run has (os.Geteuid()).
	Euid int
	// KernelSpace and RootSpace are the bytes a cold kernel and a cold
	// build root take while they are made.
	KernelSpace, RootSpace uint64
}

// NewPreflight returns the checks for this process on this host.
func NewPreflight(tools ...string) *Preflight {
	return &Preflight{Tools: tools, ProcSys: "/proc/sys", ProcSelf: "/proc/self", EtcDir: "/etc", Euid: os.Geteuid(),
		KernelSpace: kernelSpace, RootSpace: rootSpace}
}

// Run checks c and selected; it returns a *PreflightError naming every
// problem and its fix, or nil. It takes well under a second.
func (p *Preflight) Run(ctx context.Context, c *Cache, selected []Kernel) error {
	var problems []string
	tools := []string{"make"}
	if len(selected) > 0 {
		tools = append(tools, "apt-get", "apt-cache", "dpkg-deb", "gpgv")
	}
	roots, coldKernels := c.plannedRoots(ctx, selected)
	coldRoots := 0
	var rootKernels []string
	for r, names := range roots {
		rootKernels = append(rootKernels, names...)
		if kbuild.CheckRoot(filepath.Join(c.Dir, "roots", rootKey(r))) != nil {
			coldRoots++
		}
	}
	slices.Sort(rootKernels)
	if len(roots) > 0 {
		// Builds in a root run mount and chroot (in /usr/sbin, often
		// not on a user's PATH: runMake adds it). A minimal Debian 13
		// has no mount.
		for _, t := range []string{"mount", "chroot"} {
			if err := needSbinTool(t); err != nil {
				problems = append(problems, err.Error())
			}
		}
		tools = append(tools, "unshare")
		if coldRoots > 0 {
			tools = append(tools, "mmdebstrap")
			if p.Euid != 0 {
				tools = append(tools, "newuidmap", "newgidmap")
			}
		}
	}
	for _, t := range append(tools, p.Tools...) {
		if err := proc.NeedTool(t); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(roots) > 0 && p.Euid != 0 {
		if err := p.checkUserns(ctx, rootKernels); err != nil {
			problems = append(problems, err.Error())
		}
		if coldRoots > 0 {
			if err := p.checkSubids(); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	need := uint64(coldKernels)*p.KernelSpace + uint64(coldRoots)*p.RootSpace
	if need > 0 {
		need += spareSpace
		if free, dir, err := freeSpace(c.Dir); err == nil && free < need {
			problems = append(problems, fmt.Sprintf("disk space: %s has %d MB free, and the %d kernels and %d build roots not cached yet need about %d MB: free some space, or set KMODTEST_CACHE to a directory on a bigger disk",
				dir, free>>20, coldKernels, coldRoots, need>>20))
		}
	}
	if len(problems) > 0 {
		return &PreflightError{Problems: problems}
	}
	return nil
}

// plannedRoots returns the build roots the selected kernels will use
// (with the kernels that use each) and how many kernels are not cached.
// A kernel that prefers the host is decided by compiler identity when
// its headers are cached; when they are not, Fetch checks again once
// they are (see Cache.fetch).
func (c *Cache) plannedRoots(ctx context.Context, selected []Kernel) (map[*BuildRoot][]string, int) {
	roots := map[*BuildRoot][]string{}
	cold := 0
	for _, k := range selected {
		entry := filepath.Join(c.Dir, "kernels", kernelKey(k))
		var m kernelManifest
		cached := cachefs.LoadManifest(entry, &m) == nil
		if !cached {
			cold++
		}
		r := k.Root
		if k.Toolchain == HostToolchain {
			if !cached {
				continue
			}
			var err error
			if r, _, err = chooseRoot(ctx, k, filepath.Join(entry, m.KDIR)); err != nil {
				continue // Fetch reports it
			}
		}
		if r != nil {
			roots[r] = append(roots[r], k.Name)
		}
	}
	return roots, cold
}

// needSbinTool is proc.NeedTool for programs in /usr/sbin or /sbin, which
// builds find there whatever the user's PATH.
func needSbinTool(tool string) error {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if fi, err := os.Stat(filepath.Join(dir, tool)); err == nil && fi.Mode()&0o111 != 0 {
			return nil
		}
	}
	return proc.NeedTool(tool)
}

// checkUserns tries what module builds in a build root do as a normal
// user: unshare -r -m. On failure the error names the host's rule that
// refused it and the fixes.
func (p *Preflight) checkUserns(ctx context.Context, kernels []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := proc.CombinedOutput(proc.Command(ctx, "unshare", "-r", "-m", "true"))
	if err == nil {
		return nil
	}
	who := strconv.Itoa(p.Euid)
	if u, uerr := user.Current(); uerr == nil {
		who = u.Username
	}
	msg := strings.TrimSpace(string(out))
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("user namespaces: `unshare -r -m true` failed as %s (%s).\nBuilding modules in a build root (kernels %s) needs them when not running as root. Fix, one of:\n%s",
		who, msg, strings.Join(kernels, ", "), strings.Join(p.usernsFixes(), "\n"))
}

// UnshareAppArmorProfile lets unshare, and only unshare, create user
// namespaces under Ubuntu's kernel.apparmor_restrict_unprivileged_userns.
const UnshareAppArmorProfile = `abi <abi/4.0>,
include <tunables/global>

profile kmodtest-unshare /usr/bin/unshare flags=(unconfined) {
  userns,
}`

// usernsFixes returns the remedies for the rule this host applies.
func (p *Preflight) usernsFixes() []string {
	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(p.ProcSys, name))
		return strings.TrimSpace(string(data))
	}
	var fixes []string
	if read("kernel/apparmor_restrict_unprivileged_userns") == "1" {
		fixes = append(fixes,
			"- sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 23.10 and later; lasts until reboot, or write it to /etc/sysctl.d/60-kmodtest.conf)",
			"- or allow user namespaces for unshare alone: put this AppArmor profile in /etc/apparmor.d/kmodtest-unshare\n"+
				indent(UnshareAppArmorProfile, "    ")+
				"\n  and load it: sudo apparmor_parser -r /etc/apparmor.d/kmodtest-unshare")
	}
	if read("user/max_user_namespaces") == "0" {
		fixes = append(fixes, "- sudo sysctl -w user.max_user_namespaces=15000 (this host allows none)")
	}
	if read("kernel/unprivileged_userns_clone") == "0" {
		fixes = append(fixes, "- sudo sysctl -w kernel.unprivileged_userns_clone=1")
	}
	if !kbuild.RootIsMountPoint(filepath.Join(p.ProcSelf, "mountinfo")) {
		fixes = append(fixes, "- this process runs in a chroot, where the kernel refuses user namespaces to normal users (unshare(2): EPERM): enter that system as a container instead (systemd-nspawn, or unshare -m with pivot_root), or run as root")
	}
	if len(fixes) == 0 {
		fixes = append(fixes, "- allow unprivileged user namespaces on this host (a sysctl, or the container you run in)")
	}
	return append(fixes,
		"- or run as root: sudo -E env \"PATH=$PATH\" go test ./vmtests",
		"- or select only kernels the host's own compiler builds (-kernels)")
}

// checkSubids checks that the user has subordinate ids, which
// mmdebstrap --mode=unshare maps into its namespace.
func (p *Preflight) checkSubids() error {
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("subordinate ids: who am I: %w", err)
	}
	var missing []string
	for _, f := range []string{"subuid", "subgid"} {
		if !hasSubids(filepath.Join(p.EtcDir, f), u.Username, u.Uid) {
			missing = append(missing, filepath.Join(p.EtcDir, f))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("subordinate ids: %s has no entry for %s; mmdebstrap --mode=unshare needs one to create build roots as a normal user.\nFix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (or run as root)",
		strings.Join(missing, " and "), u.Username, u.Username)
}

// hasSubids reports whether file has a line for name or uid with at
// least 65536 ids.
func hasSubids(file, name, uid string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != uid) {
			continue
		}
		if n, err := strconv.Atoi(parts[2]); err == nil && n >= 65536 {
			return true
		}
	}
	return false
}

// freeSpace returns the bytes available to unprivileged users on the
// file system of dir, or of its nearest existing parent.
func freeSpace(dir string) (uint64, string, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return st.Bavail * uint64(st.Bsize), dir, nil
		}
		if !errors.Is(err, unix.ENOENT) || filepath.Dir(dir) == dir {
			return 0, dir, err
		}
		dir = filepath.Dir(dir)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
