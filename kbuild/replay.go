package kbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// Replaying Kbuild. An incremental make of a one-file module spends most
// of its time reading the kernel's Makefiles (a no-op make took 2.8 to 4 s
// here, the compile itself 1.4 to 2.4 s, under load). Kbuild records the
// exact command of every target in a .<target>.cmd file, so a build
// directory in which make succeeded can be rebuilt after a change of .c
// files by running those commands: the changed objects, modpost, each
// .mod.o whose .mod.c changed, and the link. Anything else (a Makefile,
// Kbuild, a header, a new file, a build root) goes through make.

// replayMarker is the file in a build directory that says the last make
// (or replay) there finished, so its objects and .cmd files agree.
const replayMarker = ".kmodtest-replay-ok"

// replay rebuilds the module in work after the changed files were
// copied in, when it can; ok is false when make must do it. The caller
// has checked that the last build in work finished (replayMarker).
func replay(ctx context.Context, t Target, work string, changed []string) (kos []string, out string, ok bool, err error) {
	if t.Root != "" || len(changed) == 0 {
		return nil, "", false, nil
	}
	var compile, objects []string
	// Objects a failed compile removed are built again too.
	missing, _ := filepath.Glob(filepath.Join(work, ".*.o.cmd"))
	for _, m := range missing {
		obj := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "."), ".cmd")
		src := strings.TrimSuffix(obj, ".o") + ".c"
		if _, err := os.Stat(filepath.Join(work, obj)); err != nil && !strings.HasSuffix(obj, ".mod.o") && !slices.Contains(changed, src) {
			changed = append(changed, src)
		}
	}
	for _, rel := range changed {
		if !strings.HasSuffix(rel, ".c") || strings.Contains(rel, "/") {
			return nil, "", false, nil
		}
		cmd, err := kbuildCmd(work, strings.TrimSuffix(rel, ".c")+".o")
		if err != nil {
			return nil, "", false, nil
		}
		compile = append(compile, cmd)
		objects = append(objects, filepath.Join(work, strings.TrimSuffix(rel, ".c")+".o"))
	}
	order, err := os.ReadFile(filepath.Join(work, "modules.order"))
	if err != nil {
		return nil, "", false, nil
	}
	modpost, err := kbuildCmd(work, "Module.symvers")
	if err != nil {
		return nil, "", false, nil
	}
	type module struct{ name, modO, link string }
	var mods []module
	for _, l := range strings.Fields(string(order)) {
		name := strings.TrimSuffix(filepath.Base(l), ".ko")
		m := module{name: name}
		if m.modO, err = kbuildCmd(work, name+".mod.o"); err != nil {
			return nil, "", false, nil
		}
		if m.link, err = kbuildCmd(work, name+".ko"); err != nil {
			return nil, "", false, nil
		}
		mods = append(mods, m)
	}
	if len(mods) == 0 {
		return nil, "", false, nil
	}

	// A failure below leaves the .cmd files current: the next replay
	// compiles the changed file again (and any object a failure removed).
	var buf bytes.Buffer
	run := func(cmd string) error {
		// Kbuild runs its commands with set -e: a compiler error must
		// not go on to objtool with the old object.
		c := proc.Command(ctx, "sh", "-c", "set -e; "+cmd)
		c.Dir = t.KDIR
		c.Env = append(os.Environ(), "LC_ALL=C")
		c.Stdout, c.Stderr = &buf, &buf
		return proc.Run(c)
	}
	fail := func(cmd string, err error) ([]string, string, bool, error) {
		out := strings.ReplaceAll(buf.String(), work+"/", "")
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, out, true, ctx.Err()
		}
		return nil, out, true, &BuildError{Kernel: t.Name, Cmd: cmd, Output: compilerLines(out)}
	}
	for i, cmd := range compile {
		_ = os.Remove(objects[i])
		if err := run(cmd); err != nil {
			return fail(cmd, err)
		}
	}
	before := map[string][]byte{}
	for _, m := range mods {
		before[m.name], _ = os.ReadFile(filepath.Join(work, m.name+".mod.c"))
	}
	if err := run(modpost); err != nil {
		return fail(modpost, err)
	}
	for _, m := range mods {
		after, _ := os.ReadFile(filepath.Join(work, m.name+".mod.c"))
		if _, err := os.Stat(filepath.Join(work, m.name+".mod.o")); err != nil || !bytes.Equal(before[m.name], after) {
			if err := run(m.modO); err != nil {
				return fail(m.modO, err)
			}
		}
		if err := run(m.link); err != nil {
			return fail(m.link, err)
		}
		kos = append(kos, filepath.Join(work, m.name+".ko"))
	}
	return kos, strings.ReplaceAll(buf.String(), work+"/", ""), true, nil
}

// kbuildCmd returns the command Kbuild recorded for target in dir
// (the cmd_ line of .<target>.cmd), with make's $$ unescaped.
func kbuildCmd(dir, target string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "."+target+".cmd"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "cmd_") {
			continue
		}
		_, cmd, ok := strings.Cut(line, ":= ")
		if !ok {
			break
		}
		return strings.ReplaceAll(cmd, "$$", "$"), nil
	}
	return "", errors.New("no cmd_ line in ." + target + ".cmd")
}
