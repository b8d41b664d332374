package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmodtest/kmodtest/cmd/kmodtest/shell"
	"github.com/kmodtest/kmodtest/harness"
)

var shellCommand = &command{
	Name:  "shell",
	Args:  "[-kernels 6.1 [-profile hardened] | -kernel IMAGE -kdir TREE] [-src DIR | -ko FILE] [-gdb [-dbg | -vmlinux FILE]]",
	Short: "boot a kernel with the module loaded and open a shell in the guest",
	Long: `shell builds the module, boots one kernel (6.1 unless -kernels or
-kernel says otherwise) with the module loaded, and puts the guest's shell
on your terminal. In the guest:

  probe all | probe STEP...   the prober's steps (probe reply, probe full)
  greet TEXT                  one greeting with NLM_F_ACK: the reply and ack
  dmesg, lsmod, ls /sys/module/NetlinkGreetingsLKM, cat, grep, ps

exit (or Ctrl-D) powers the guest off and ends kmodtest shell. Ctrl-C goes
to the guest; Ctrl-A x kills QEMU, Ctrl-A c switches to QEMU's monitor.

With -gdb, QEMU's gdb stub listens on 127.0.0.1 and the kernel boots with
nokaslr; once the module is loaded, shell writes a gdb command file that
connects and loads the module's symbols at their load addresses, and
prints the gdb command to run in another terminal. -dbg adds the kernel's
own symbols from Debian's linux-image-REL-dbg (858 MB to download for 6.1;
fetched once, only the vmlinux is kept in the cache's dbg/); -vmlinux names
a vmlinux with debug info yourself (a self-built kernel's).

Flags (the environment variables of go test ./vmtests give defaults):

  -kernels NAME       the kernel of the matrix (default 6.1)
  -kernel, -kdir      bring your own kernel: its image and built tree
  -profile NAME       the boot profile, for kernels with several (hardened)
  -src DIR            the module source (default kmod/ of the repository)
  -ko FILE            load this built module instead (the .ko a failed go test
                      run left in its artifacts; its shell: line says so)
  -gdb                start QEMU's gdb stub and write the gdb command file
  -dbg                kernel symbols for gdb from Debian's -dbg package (cached)
  -vmlinux FILE       kernel symbols for gdb (default: -kdir's vmlinux, if any)
  -accel kvm|tcg      default: KVM when QEMU can use it
  -guest-cpu MODEL    guest CPU model (Skylake-Client, EPYC-Milan, …; default:
                      qemu64 under TCG, host under KVM)
  -artifacts-dir DIR  the image, logs and gdb file go to DIR/shell/<kernel>/`,
	Run: runShell,
}

func runShell(ctx context.Context, env *cliEnv, args []string) error {
	var o harness.Options
	fs := newFlagSet("shell")
	o.Register(fs, watchDefaults)
	src := fs.String("src", "", "")
	gdb := fs.Bool("gdb", false, "")
	vmlinux := fs.String("vmlinux", "", "")
	ko := fs.String("ko", "", "")
	dbg := fs.Bool("dbg", false, "")
	profile := fs.String("profile", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (the kernel goes in -kernels)", fs.Arg(0))
	}
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	if (*vmlinux != "" || *dbg) && !*gdb {
		return usagef("-vmlinux and -dbg give gdb the kernel's symbols: they need -gdb")
	}
	if *vmlinux != "" && *dbg {
		return usagef("-vmlinux names the kernel's symbols, -dbg fetches Debian's: give one of them")
	}
	repo, err := findRepo()
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(env.stderr, "kmodtest: "+format+"\r\n", a...) }
	s, err := harness.NewSession(ctx, o, repo, logf)
	if err != nil {
		return err
	}
	so := shell.Options{Session: s, TTY: os.Stdin, Out: env.stderr, GDB: *gdb}
	if *ko != "" && *src != "" {
		return usagef("-src builds the module, -ko loads a built one: give one of them")
	}
	for _, p := range []*string{src, vmlinux, ko} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	so.Src, so.VMLinux, so.Ko, so.Profile, so.Dbg = *src, *vmlinux, *ko, *profile, *dbg
	if so.VMLinux == "" && s.Custom != nil {
		if _, err := os.Stat(filepath.Join(s.Custom.KDIR, "vmlinux")); err == nil {
			so.VMLinux = filepath.Join(s.Custom.KDIR, "vmlinux")
		}
	}
	return shell.Run(ctx, so)
}
