package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/greet"
	"github.com/mdlayher/netlink"
)

// Shell commands: see contract.ShellCommands for how they reach the prober.
const (
	cmdProbe = "probe"
	cmdGreet = "greet"
)

// shellCommand returns the command that args name, if any.
func shellCommand(args []string) (func() int, bool) {
	if len(args) < 2 {
		return nil, false
	}
	rest := args[2:]
	switch filepath.Base(args[1]) {
	case cmdProbe:
		return func() int { return probeCommand(rest) }, true
	case cmdGreet:
		return func() int { return greetCommand(rest) }, true
	}
	return nil, false
}

// probeCommand runs steps by hand: "probe reply", "probe all".
func probeCommand(args []string) int {
	fs := flag.NewFlagSet(cmdProbe, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: probe all|core|full|STEP...\n  core (= all): %s\n  full adds: every scenario (see README)\n",
			strings.Join(contract.CoreSteps, " "))
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		return 1
	}
	var names []string
	for _, a := range fs.Args() {
		switch a {
		case "all", "core":
			names = append(names, contract.CoreSteps...)
		case "full":
			names = append(names, contract.FullSteps...)
		default:
			if _, ok := steps[a]; !ok {
				fmt.Fprintf(os.Stderr, "probe: unknown step %q (known: %s)\n", a, strings.Join(contract.FullSteps, " "))
				return 2
			}
			names = append(names, a)
		}
	}
	p := newProber(cfg, nil)
	if names[0] == contract.StepInsmod && p.moduleLoaded() {
		fmt.Printf("probe: unloading %s first, so that the insmod step can load it\n", cfg.ModuleName)
		if _, err := p.rmmod(3 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "probe: %v\n", err)
			return 1
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		return 1
	}
	rep := &reporter{port: devnull}
	defer rep.Close()
	failed := 0
	for i, name := range names {
		if p.runStep(rep, name, i == 0) == contract.StatusFail {
			failed++
		}
	}
	if !p.moduleLoaded() {
		fmt.Printf("probe: %s is not loaded now (probe insmod loads it)\n", cfg.ModuleName)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// greetCommand sends one greeting with NLM_F_ACK and prints the answers.
func greetCommand(args []string) int {
	fs := flag.NewFlagSet(cmdGreet, flag.ContinueOnError)
	protocol := fs.Int("protocol", greet.Protocol, "netlink protocol of the module")
	noAck := fs.Bool("no-ack", false, "send without NLM_F_ACK (the module then answers nothing)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: greet [-protocol N] [-no-ack] TEXT...\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	text := strings.Join(fs.Args(), " ")
	c, err := greet.Dial(*protocol, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "greet: %v (is the module loaded? lsmod, probe insmod)\n", err)
		return 1
	}
	defer c.Close()
	flags := netlink.Request | netlink.Acknowledge
	if *noAck {
		flags = netlink.Request
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	res, err := c.Greet(ctx, text, flags)
	fmt.Printf("sent %q from port %d\n", text, c.PID())
	if res != nil {
		for _, m := range res.Messages {
			line := greet.DescribeMessage(m)
			if m.Header.Type == greet.TypeGreet {
				if reply, err := greet.DecodeReply(m.Data); err == nil {
					line += fmt.Sprintf(": %q", reply)
				}
			}
			fmt.Println(line)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "greet: %v\n", err)
		return 1
	}
	return 0
}

// sections reads the addresses of a loaded module's ELF sections.
func sections(sysModule string) map[string]string {
	dir := sysModule + "/sections"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err == nil {
			out[e.Name()] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// runShell loads the module and runs an interactive shell on the console;
// the caller powers the guest off when it returns.
func runShell(rep *reporter, cfg contract.Config) error {
	p := newProber(cfg, nil)
	if err := p.insmod(); err != nil {
		fmt.Fprintf(os.Stderr, "kmodtest: %v\n(the shell starts anyway: fix the module or try probe insmod)\n", err)
	} else {
		fmt.Printf("kmodtest: %s loaded (%s)\n", cfg.ModuleName, cfg.ModulePath)
		rep.emit(contract.Event{Kind: contract.KindLoaded, Sections: sections(p.sysModule())})
	}
	fmt.Printf("kmodtest: kernel %s. Commands: probe all|STEP, greet TEXT, dmesg, ls /sys/module/%s, cat ...\n", kernelRelease(), cfg.ModuleName)
	fmt.Printf("kmodtest: exit (or Ctrl-D) powers the guest off; Ctrl-A x kills QEMU.\n")
	sh := exec.Command("/bbin/gosh")
	sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
	sh.Env = append(os.Environ(), "PATH=/bin:/bbin:/ubin", "TERM=vt100")
	if err := sh.Run(); err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	return nil
}
