package kbuild

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKbuildCmd(t *testing.T) {
	dir := t.TempDir()
	cmdFile := "savedcmd_x.o := wrong\ncmd_/m/x.o := gcc -c -o /m/x.o /m/x.c; echo $$HOME\n\nsource_/m/x.o := /m/x.c\n"
	if err := os.WriteFile(filepath.Join(dir, ".x.o.cmd"), []byte(cmdFile), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := kbuildCmd(dir, "x.o")
	if want := "gcc -c -o /m/x.o /m/x.c; echo $HOME"; err != nil || got != want {
		t.Errorf("kbuildCmd: want %q, got %q (%v)", want, got, err)
	}
	if _, err := kbuildCmd(dir, "y.o"); err == nil {
		t.Error("kbuildCmd of a target without a .cmd file: want an error")
	}
}
