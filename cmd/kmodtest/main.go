// Command kmodtest is kmodtest's command-line tool. `go test ./vmtests`
// stays the main job and the CI entry; kmodtest holds what a person does
// around it.
//
// Usage:
//
//	kmodtest <command> [arguments]
//	kmodtest help [command]
//	kmodtest <command> -h
//
// Exit status: 0 on success, 1 when the command failed, 2 for a usage
// error (the reason goes to stderr).
//
// Each command lives in its own file (cache.go: cacheCommand) and is
// listed in [commands].
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

// A command is one subcommand of kmodtest.
type command struct {
	// Name is what the user types; Args the rest of its usage line.
	Name, Args string
	// Short is the one-line summary `kmodtest help` lists; Long, if set,
	// follows the usage line in `kmodtest help NAME`.
	Short, Long string
	// Run runs the command with the arguments after its name. It
	// returns a *usageError for bad arguments, flag.ErrHelp for -h.
	Run func(ctx context.Context, env *cliEnv, args []string) error
}

// commands lists the subcommands, in help order. A new command is a file
// defining its *command and one line here.
var commands = []*command{
	cacheCommand,
	watchCommand,
	shellCommand,
	planCommand,
	mergeCommand,
	reportCommand,
	compareCommand,
	checkCommand,
}

// cliEnv is what a command may use of its surroundings; tests give it
// buffers.
type cliEnv struct {
	stdout, stderr io.Writer
}

// A usageError is a bad command line: exit status 2.
type usageError struct {
	msg string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error saying what was wrong.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cliEnv{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(env.stderr, "kmodtest: no command given\n\n")
		printHelp(env.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(env, rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(env.stderr, "kmodtest: unknown command %q (commands: %s)\nRun 'kmodtest help' for usage.\n", name, strings.Join(names(), ", "))
		return 2
	}
	err := cmd.Run(ctx, env, rest)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(env.stdout, cmd)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.stderr, "kmodtest %s: %s\nRun 'kmodtest help %s' for usage.\n", cmd.Name, ue.msg, cmd.Name)
		return 2
	default:
		fmt.Fprintf(env.stderr, "kmodtest %s: %v\n", cmd.Name, err)
		return 1
	}
}

func lookup(name string) *command {
	i := slices.IndexFunc(commands, func(c *command) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return commands[i]
}

func names() []string {
	var out []string
	for _, c := range commands {
		out = append(out, c.Name)
	}
	return out
}

// help is `kmodtest help [command]`.
func help(env *cliEnv, args []string) int {
	switch len(args) {
	case 0:
		printHelp(env.stdout)
		return 0
	case 1:
		cmd := lookup(args[0])
		if cmd == nil {
			fmt.Fprintf(env.stderr, "kmodtest help: unknown command %q (commands: %s)\n", args[0], strings.Join(names(), ", "))
			return 2
		}
		printCommandHelp(env.stdout, cmd)
		return 0
	default:
		fmt.Fprintf(env.stderr, "kmodtest help: want at most one command, got %q\n", args)
		return 2
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "kmodtest tests an out-of-tree kernel module on real kernels under QEMU.\n")
	fmt.Fprintf(w, "The test matrix itself runs with: go test ./vmtests\n\n")
	fmt.Fprintf(w, "Usage:\n\n\tkmodtest <command> [arguments]\n\nCommands:\n\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "\t%s\t%s\n", c.Name, c.Short)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'kmodtest help <command>' or 'kmodtest <command> -h' for a command's usage.\n")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: kmodtest %s %s\n\n%s\n", c.Name, c.Args, c.Short)
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Long))
	}
}

// newFlagSet returns a flag set for command name that reports errors
// instead of exiting and prints nothing itself: run prints the usage.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("kmodtest "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args with fs and turns flag errors into usage errors
// (and -h into flag.ErrHelp).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usagef("%v", err)
}
