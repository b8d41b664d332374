package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/guest/testcmd"
	"github.com/kmodtest/kmodtest/ktap"
)

// TestJudged: a pass says how long and how many KTAP tests, a skip is a
// skipError with the reason, a failure quotes the output's end.
func TestJudged(t *testing.T) {
	doc, err := ktap.Parse("KTAP version 1\n1..2\nok 1 a\nok 2 b\n")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := judged(testcmd.Result{Name: "k", Status: testcmd.StatusPass, KTAP: doc}); err != nil || !strings.Contains(info, "2 KTAP tests") {
		t.Errorf("pass: %q, %v", info, err)
	}
	var skip *skipError
	if _, err := judged(testcmd.Result{Status: testcmd.StatusSkip, Reason: "exit status 77 (skip)"}); !errors.As(err, &skip) || skip.reason != "exit status 77 (skip)" {
		t.Errorf("skip: %v", err)
	}
	var out []string
	for i := range 20 {
		out = append(out, "line "+string(rune('a'+i)))
	}
	_, err = judged(testcmd.Result{Status: testcmd.StatusFail, Reason: "exit status 3", Output: out})
	if err == nil || !strings.HasPrefix(err.Error(), "exit status 3\noutput (last lines):\nline f\n") || !strings.HasSuffix(err.Error(), "line t") {
		t.Errorf("fail: %v", err)
	}
}

// TestSubtestName: a KTAP name becomes one level of a step name.
func TestSubtestName(t *testing.T) {
	for _, c := range []struct {
		test ktap.Test
		want string
	}{
		{ktap.Test{Number: 1, Name: "answer"}, "answer"},
		{ktap.Test{Number: 2, Name: "a/b c"}, "a_b_c"},
		{ktap.Test{Number: 3}, "3"},
	} {
		if got := subtestName(&c.test); got != c.want {
			t.Errorf("subtestName(%q) = %q, want %q", c.test.Name, got, c.want)
		}
	}
}
