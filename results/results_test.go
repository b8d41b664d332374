package results

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The shards in testdata/shards are real `go test -json ./vmtests`
// outputs made on the build machine (TCG), with repeated output lines
// cut (see testdata/README.md), laid out as CI downloads them: one
// directory per shard with go-test.json and, where the run wrote one,
// timings.json.
//
//	shard-1-of-4: -kernels 6.12, passes
//	shard-2-of-4: -kernels 7.3 -steps full, passes (both profiles)
//	shard-3-of-4: -kernels 6.1 with kmod/fixtures/no-ack.patch applied
//	              to the module: ack and the steps that need it fail
//	shard-4-of-4: -kernels 5.10 -steps full -timeout 15s: the test
//	              binary panics while both targets boot; no timings.json
func loadShards(t *testing.T) *Results {
	t.Helper()
	r, err := Load("testdata/shards")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLoadShards(t *testing.T) {
	r := loadShards(t)
	var names, failed []string
	for _, s := range r.Shards {
		names = append(names, s.Name)
		if s.Failed() {
			failed = append(failed, s.Name)
		}
	}
	if want := []string{"shard-1-of-4", "shard-2-of-4", "shard-3-of-4", "shard-4-of-4"}; !slices.Equal(names, want) {
		t.Errorf("shards %v, want %v", names, want)
	}
	if want := []string{"shard-3-of-4", "shard-4-of-4"}; !slices.Equal(failed, want) {
		t.Errorf("failed shards %v, want %v", failed, want)
	}
	if len(r.Timings) != 2 {
		t.Errorf("%d timings files, want 2 (shards 1 and 2)", len(r.Timings))
	}
}

func TestTable(t *testing.T) {
	text := loadShards(t).Text()
	for _, want := range []string{
		"merged 4 shard(s): shard-1-of-4, shard-2-of-4, shard-3-of-4, shard-4-of-4\n",
		// harness's own tables: timings where a shard wrote them, and
		// the kernels x steps summary with the probe's steps in order.
		"timings (seconds; accelerator tcg):",
		"7.3-hardened           qemu64",
		"summary (. pass, F fail, s skip, - not run):\n   1 build\n   2 boot\n   3 insmod\n   4 reply\n   5 ack\n",
		"5.10                     -  -  -  -  -",
		"6.1                      .  .  .  .  F  F  F  -",
		"6.12                     .  .  .  .  .  .  .  -",
		"first failure: 5.10: unfinished (shard-4-of-4: see its output)\n",
		"  TestFixtures                     skip  in shard-1-of-4, shard-2-of-4, shard-3-of-4, shard-4-of-4",
		"5 failure(s)\n",
		"  shard-3-of-4: TestModule/6.1/ack (fail)\n    rerun: KMODTEST_CACHE=/work/cache-shards go test ./vmtests -v -count=1 -run '^TestModule$/^6\\.1$/^ack$' -kernels 6.1",
		"  shard-4-of-4: TestModule/5.10-hardened (unfinished)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// A skipped step (7.3 skips alloc-failures without fault injection)
	// shows as s, and 7.3 ran every step.
	if !strings.Contains(text, "7.3                      .  .  .") || !strings.Contains(text, " s ") {
		t.Errorf("want 7.3's row with its skips:\n%s", text)
	}
}

func TestFailures(t *testing.T) {
	fails := loadShards(t).Failures()
	var got []string
	for _, f := range fails {
		got = append(got, f.Shard+" "+f.Test+" "+f.Status)
	}
	want := []string{
		"shard-3-of-4 TestModule/6.1/ack fail",
		"shard-3-of-4 TestModule/6.1/no-reply-without-ack fail",
		"shard-3-of-4 TestModule/6.1/original-client fail",
		"shard-4-of-4 TestModule/5.10 unfinished",
		"shard-4-of-4 TestModule/5.10-hardened unfinished",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ack := strings.Join(fails[0].Output, "\n")
	if !strings.Contains(ack, "step ack failed on 6.1:") || !strings.Contains(ack, "(no ack)") || strings.Contains(ack, "--- FAIL") {
		t.Errorf("ack's output lacks its reason, or keeps go test's framing:\n%s", ack)
	}
	if fails[0].Rerun == "" || fails[3].Rerun != "" {
		t.Errorf("rerun lines %q and %q: want one for the failed step, none for the unfinished target", fails[0].Rerun, fails[3].Rerun)
	}
	if timeout := strings.Join(fails[4].Output, "\n"); !strings.Contains(timeout, "panic: test timed out after 15s") {
		t.Errorf("the unfinished target's output lacks the timeout:\n%s", timeout)
	}
}

// TestPackageFailure is a shard whose test binary stopped before any
// test (a real run with -kernels 9.9): its failure is the package's,
// with the harness's message.
func TestPackageFailure(t *testing.T) {
	r, err := Load("testdata/bad-kernel.json")
	if err != nil {
		t.Fatal(err)
	}
	fails := r.Failures()
	if len(fails) != 1 || fails[0].Test != "package github.com/kmodtest/kmodtest/vmtests" || !strings.Contains(strings.Join(fails[0].Output, "\n"), `unknown kernel "9.9"`) {
		t.Fatalf("failures %+v, want the package's, quoting the harness", fails)
	}
	var junit bytes.Buffer
	if err := r.JUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `tests="1" failures="1"`) || !strings.Contains(junit.String(), "unknown kernel") {
		t.Errorf("JUnit lacks the package failure:\n%s", junit.String())
	}
}

func TestJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := loadShards(t).JUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("the JUnit file does not parse: %v\n%s", err, buf.String())
	}
	// Failed: TestModule, TestModule/6.1 and its 3 steps in shard 3;
	// TestModule and both targets, unfinished, in shard 4.
	if len(got.Suites) != 4 || got.Failures != 8 {
		t.Errorf("%d suites, %d failures; want 4 and 8", len(got.Suites), got.Failures)
	}
	var ack *junitCase
	for _, s := range got.Suites {
		for i, c := range s.Cases {
			if c.Name == "TestModule/6.1/ack" {
				ack = &s.Cases[i]
			}
		}
	}
	if ack == nil || ack.Failure == nil || ack.Failure.Message != "module_test.go:69: step ack failed on 6.1:" || !strings.Contains(ack.Failure.Text, "rerun: ") {
		t.Errorf("TestModule/6.1/ack: %+v", ack)
	}
}

func TestHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := loadShards(t).HTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<title>kmodtest: 4 shard(s), 5 failure(s)</title>",
		`<tr><th>6.1</th><td class="pass" title="6.1 build: pass">.</td>`,
		`<td class="fail" title="6.1 ack: fail">F</td>`,
		`<h3><a href="#failure-1">shard-3-of-4: TestModule/6.1/ack</a> (fail)</h3>`,
		`<code class="rerun">KMODTEST_CACHE=/work/cache-shards go test ./vmtests -v -count=1 -run &#39;^TestModule$/^6\.1$/^ack$&#39;`,
		"panic: test timed out after 15s",
		"<h2>Timings (seconds; accelerator tcg)</h2>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched from elsewhere.
	for _, bad := range []string{"<script", "<link", "src=", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q: it must open without anything from elsewhere", bad)
		}
	}
}

func TestMergedTimings(t *testing.T) {
	m := loadShards(t).MergedTimings()
	if m.Accel != "tcg" || len(m.Targets) != 3 {
		t.Errorf("merged timings: accel %q, %d targets; want tcg and 3 (6.12, 7.3, 7.3-hardened)", m.Accel, len(m.Targets))
	}
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	notJSON := filepath.Join(t.TempDir(), "out.json")
	os.WriteFile(notJSON, []byte("{not go test output\n"), 0o644)
	noEvents := filepath.Join(t.TempDir(), "none.json")
	os.WriteFile(noEvents, []byte("PASS\n"), 0o644)
	for _, tt := range []struct {
		paths []string
		want  string
	}{
		{nil, "no input: give the go test -json files of the shards, or a directory holding them"},
		{[]string{filepath.Join(empty, "missing.json")}, "no such file or directory: give the go test -json files"},
		{[]string{empty}, "no go test -json output (*.json) or results.json in this directory or below it"},
		{[]string{notJSON}, "out.json: line 1: invalid character"},
		{[]string{noEvents}, "none.json: no test events: want the output of go test -json"},
	} {
		_, err := Load(tt.paths...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%q): got %v, want an error containing %q", tt.paths, err, tt.want)
		}
	}
}

// TestMissingShard: a plan of 5 shards of which the fifth left nothing
// (its job died before go test) fails in every form of the report.
func TestMissingShard(t *testing.T) {
	r := loadShards(t)
	r.Expected = 5
	fails := r.Failures()
	if last := fails[len(fails)-1]; last.Shard != "shard-5-of-5" || last.Status != StatusMissing {
		t.Errorf("last failure %+v, want shard-5-of-5 missing", last)
	}
	// The four shards present are named for a plan of 4, so all five
	// of a plan of 5 are missing.
	if got := r.Missing(); len(got) != 5 {
		t.Errorf("missing %v, want shard-1-of-5 to shard-5-of-5", got)
	}
	var junit, page bytes.Buffer
	if err := r.JUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `<testsuite name="shard-5-of-5" tests="1" failures="1"`) || !strings.Contains(page.String(), "shard-5-of-5: shard</a> (missing)") || !strings.Contains(r.Text(), "shard-5-of-5: shard (missing)") {
		t.Errorf("a missing shard is not a failure everywhere:\n%s", r.Text())
	}
	r.Expected = 4
	if got := r.Missing(); len(got) != 0 {
		t.Errorf("missing %v of a plan of 4, want none", got)
	}
}

// TestPackageWithoutTests: go test -json marks a package without test
// files skipped; that is no failure.
func TestPackageWithoutTests(t *testing.T) {
	in := `{"Action":"start","Package":"example.com/empty"}
{"Action":"output","Package":"example.com/empty","Output":"?   \texample.com/empty\t[no test files]\n"}
{"Action":"skip","Package":"example.com/empty","Elapsed":0}
`
	s, err := Parse("empty", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	r := &Results{Shards: []*Shard{s}}
	if s.Failed() || len(r.Failures()) != 0 {
		t.Errorf("a package without tests failed: %+v", r.Failures())
	}
}
