// Package shell is kmodtest shell: boot one kernel with the module built
// and loaded, and give the user the guest's shell on their terminal, with
// the prober as the probe command and the greeting client as greet. With
// GDB, QEMU's gdb stub listens and a gdb command file loads the module's
// symbols at the addresses the guest loaded it at.
package shell

import (
	"context"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/vm"
)

// Commands are the u-root commands of the shell image besides init and
// the prober: a shell and the tools one pokes a module with.
var Commands = []string{
	"github.com/u-root/u-root/cmds/core/gosh",
	"github.com/u-root/u-root/cmds/core/cat",
	"github.com/u-root/u-root/cmds/core/dmesg",
	"github.com/u-root/u-root/cmds/core/echo",
	"github.com/u-root/u-root/cmds/core/grep",
	"github.com/u-root/u-root/cmds/core/ls",
	"github.com/u-root/u-root/cmds/core/lsmod",
	"github.com/u-root/u-root/cmds/core/ps",
	"github.com/u-root/u-root/cmds/core/uname",
}

// Options configure one shell.
type Options struct {
	// Session holds the (one) target, the cache and the accelerator.
	Session *harness.Session
	// Src is the module source; "" means kmod/ of the repository.
	Src string
	// Ko, when set, is a built module to load instead (a failed run's
	// copy in its artifacts).
	Ko string
	// Profile picks the boot profile of a kernel that has several;
	// "" is the kernel's first (default).
	Profile string
	// TTY is the user's terminal: QEMU's stdin, stdout and stderr.
	TTY *os.File
	// Out receives kmodtest's own lines (the gdb command).
	Out io.Writer
	// GDB starts QEMU's gdb stub and writes a gdb command file.
	GDB bool
	// VMLinux is the kernel's symbol file for gdb, if any.
	VMLinux string
	// Dbg fetches Debian's debug symbols for the kernel (once, into the
	// cache) when VMLinux is not given.
	Dbg bool
	// OnGDB, when set, is called with the gdb command file once the
	// module is loaded (tests drive gdb from it).
	OnGDB func(file string)
}

// Run boots the shell and returns when the guest powered off.
func Run(ctx context.Context, o Options) error {
	s := o.Session
	tg, err := pickTarget(s.Targets, o.Profile)
	if err != nil {
		return err
	}
	src := o.Src
	if src == "" {
		src = filepath.Join(s.Repo, "kmod")
	}
	f := s.Custom
	if f == nil {
		var err error
		if f, err = s.Cache.Fetch(ctx, tg.Kernel); err != nil {
			return err
		}
	}
	image, _, err := s.Cache.BootImage(ctx, f)
	if err != nil {
		return err
	}
	if o.GDB && o.Dbg && o.VMLinux == "" {
		if o.VMLinux, err = s.Cache.DebugVmlinux(ctx, f); err != nil {
			return err
		}
	}
	ko := o.Ko
	if ko == "" {
		mod, err := s.Cache.BuildModule(ctx, f, src, "")
		if err != nil {
			return err
		}
		for _, w := range mod.Warnings {
			s.Logf("compiler warning (go test fails on it): %s", w)
		}
		ko = mod.Ko
	} else if _, err := os.Stat(ko); err != nil {
		return fmt.Errorf("-ko: %w", err)
	}
	b := &initramfs.Builder{RepoDir: s.Repo, CacheDir: s.Cache.Dir, Logf: s.Logf, Extra: Commands, Tags: []string{"goshsmall"}}
	base, err := b.Base(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.Artifacts, "shell", tg.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	cfg := harness.GuestConfig(tg)
	cfg.Shell = true
	files := []initramfs.File{{Source: ko, Target: harness.ModuleInGuest}}
	for _, c := range contract.ShellCommands {
		files = append(files, initramfs.File{Data: []byte(contract.ShellScript), Target: c, Mode: 0o755})
	}
	if err := initramfs.Compose(initrd, base.Path, cfg, files); err != nil {
		return fmt.Errorf("compose initramfs: %w", err)
	}

	v := harness.VMConfig(tg, s.Accel, 0)
	v.Kernel, v.Initramfs, v.Dir = image, initrd, dir
	var extra []string
	var gdbPort int
	if o.GDB {
		// No KASLR: the kernel's symbols then hold at their link addresses.
		v.Append = append(append([]string(nil), v.Append...), "nokaslr")
		if gdbPort, err = freePort(); err != nil {
			return err
		}
		extra = append(extra, "-gdb", fmt.Sprintf("tcp:127.0.0.1:%d", gdbPort))
	}
	fmt.Fprintf(o.Out, "kmodtest shell: booting %s (%s); exit or Ctrl-D powers the guest off, Ctrl-A x kills QEMU\r\n", tg.Name(), s.Accel)
	restore := vm.SaveTerminal(o.TTY)
	defer restore()
	in, err := vm.StartInteractive(ctx, v, o.TTY, extra...)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- in.Wait() }()
	if o.GDB {
		gdbFile := filepath.Join(dir, "gdb.cmd")
		select {
		case err := <-done:
			return fmt.Errorf("QEMU exited before the module was loaded: %v", err)
		case sec := <-loaded(ctx, filepath.Join(dir, "results.log")):
			if err := writeGDB(gdbFile, gdbPort, ko, src, o.VMLinux, sec); err != nil {
				return err
			}
		}
		fmt.Fprintf(o.Out, "\r\nkmodtest shell: gdb stub on 127.0.0.1:%d; in another terminal: gdb -x %s\r\n", gdbPort, gdbFile)
		if o.OnGDB != nil {
			o.OnGDB(gdbFile)
		}
	}
	err = <-done
	restore()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("QEMU: %w (command line in %s)", err, filepath.Join(dir, "qemu-cmdline.txt"))
	}
	return nil
}

// pickTarget returns the one target shell boots: the only kernel
// selected, in the profile asked for (or its first).
func pickTarget(targets []harness.Target, profile string) (harness.Target, error) {
	var names []string
	var match []harness.Target
	for _, t := range targets {
		if !slices.Contains(names, t.Kernel.Name) {
			names = append(names, t.Kernel.Name)
		}
		if profile == "" || t.Profile == profile {
			match = append(match, t)
		}
	}
	switch {
	case len(names) != 1:
		return harness.Target{}, fmt.Errorf("shell boots one kernel, and the selection holds %d (%s): pick one, e.g. -kernels 6.1", len(names), strings.Join(names, ","))
	case len(match) == 0:
		return harness.Target{}, fmt.Errorf("-profile %q: kernel %s boots with %s", profile, names[0], strings.Join(targets[0].Kernel.Profiles, ", "))
	}
	return match[0], nil
}

// loaded returns a channel that receives the module's sections once the
// prober reported them on the result port.
func loaded(ctx context.Context, results string) <-chan map[string]string {
	ch := make(chan map[string]string, 1)
	go func() {
		for ctx.Err() == nil {
			data, _ := os.ReadFile(results)
			for _, l := range strings.Split(string(data), "\n") {
				if e, ok, err := contract.ParseLine([]byte(l)); ok && err == nil && e.Kind == contract.KindLoaded {
					ch <- e.Sections
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return ch
}

// writeGDB writes the gdb command file: the kernel's symbols (if a
// vmlinux with them is known), the connection to QEMU's stub, and the
// module's symbols at its load addresses.
func writeGDB(path string, port int, ko, src, vmlinux string, sections map[string]string) error {
	text, ok := sections[".text"]
	if !ok {
		return errors.New("the guest reported no .text address for the module")
	}
	var w strings.Builder
	fmt.Fprintf(&w, "# Written by kmodtest shell -gdb: gdb -x %s\n", path)
	fmt.Fprintf(&w, "set pagination off\nset confirm off\n")
	if vmlinux != "" {
		fmt.Fprintf(&w, "file %s\n", vmlinux)
	} else {
		fmt.Fprintf(&w, "# No kernel symbols: kernel functions show as addresses (see -vmlinux).\nset architecture i386:x86-64\n")
	}
	fmt.Fprintf(&w, "target remote 127.0.0.1:%d\n", port)
	var names []string
	for name := range sections {
		// The symbol and string tables are the kernel's copies (kallsyms), not sections of the file.
		switch {
		case name == ".text", name == ".symtab", name == ".strtab", strings.HasPrefix(name, ".note"), strings.HasPrefix(name, ".gnu"):
		default:
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if dir := compDir(ko); dir != "" && src != "" {
		// Kbuild compiles in the kernel tree from a temporary copy of the
		// source; gdb looks for a missing file by its base name in the
		// compile directory, which this maps to the module source.
		fmt.Fprintf(&w, "set substitute-path %s %s\n", dir, src)
	}
	fmt.Fprintf(&w, "add-symbol-file %s %s", ko, text)
	for _, n := range names {
		fmt.Fprintf(&w, " -s %s %s", n, sections[n])
	}
	fmt.Fprintf(&w, "\n# e.g.: break greet_msg, continue, then greet hello in the guest; print text\n")
	return os.WriteFile(path, []byte(w.String()), 0o644)
}

// compDir returns the directory the module was compiled in, from its
// DWARF, or "".
func compDir(ko string) string {
	f, err := elf.Open(ko)
	if err != nil {
		return ""
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return ""
	}
	e, err := d.Reader().Next()
	if err != nil || e == nil {
		return ""
	}
	dir, _ := e.Val(dwarf.AttrCompDir).(string)
	return dir
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a port for the gdb stub: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
