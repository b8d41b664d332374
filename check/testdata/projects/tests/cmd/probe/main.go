// Command probe is the tests fixture's test program, built for the guest
// by kmodtest check: its argument says which outcome to show.
package main

import (
	"fmt"
	"os"
	"strings"
)

// live reports whether the fixture's module is loaded: the tests run
// with every module of the project loaded.
func live() bool {
	b, err := os.ReadFile("/sys/module/testee/initstate")
	return err == nil && strings.TrimSpace(string(b)) == "live"
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: probe pass|skip|fail|ktap")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pass":
		if !live() {
			fmt.Println("probe: testee is not loaded")
			os.Exit(1)
		}
		fmt.Println("probe: testee is live")
	case "skip":
		fmt.Println("probe: nothing to test here")
		os.Exit(77)
	case "fail":
		fmt.Println("probe: checking the answer")
		fmt.Fprintln(os.Stderr, "probe: the answer is wrong on purpose")
		os.Exit(3)
	case "ktap":
		ok := "ok"
		if !live() {
			ok = "not ok"
		}
		fmt.Print("KTAP version 1\n1..2\n")
		fmt.Printf("%s 1 module-live\n", ok)
		fmt.Print("# answer: want 41, got 42 (wrong on purpose)\nnot ok 2 answer\n")
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
