package ktap

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// flat lists every test of d as "path status[ directive reason]".
func flat(d *Document) []string {
	var out []string
	d.Walk(func(path []string, t *Test) {
		s := strings.Join(path, "/") + " " + t.Status
		if t.Directive != "" {
			s += " " + t.Directive
		}
		if t.Reason != "" {
			s += " (" + t.Reason + ")"
		}
		out = append(out, s)
	})
	return out
}

func parseFile(t *testing.T, name string) *Document {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(string(data))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return d
}

func TestParseRecorded(t *testing.T) {
	tests := []struct {
		file     string
		want     []string
		status   string
		problems int
	}{
		{"ktap-rst-example.ktap", []string{
			"main_test fail",
			"main_test/example_test_1 pass",
			"main_test/example_test_1/test_1 pass",
			"main_test/example_test_2 pass",
			"main_test/example_test_2/test_1 skip SKIP (test_1 skipped)",
			"main_test/example_test_2/test_2 pass",
			"main_test/example_test_3 fail",
			"main_test/example_test_3/test_1 pass",
			"main_test/example_test_3/test_2 fail",
			"main_test/example_test_3/test_3 skip SKIP (test_3 skipped)",
		}, StatusFail, 0},
		{"kunit-failure-nested.ktap", []string{
			"subtest 1 fail",
			"subtest 2 fail",
			"subtest 2/subsubtest 1 fail",
		}, StatusFail, 1}, // subsubtest 1 is indented twice: its own parent's result is missing
		{"kunit-tap14-skip.log", []string{
			"string-stream-test pass",
			"string-stream-test/string_stream_test_empty_on_creation pass",
			"string-stream-test/string_stream_test_analt_empty_after_add pass",
			"string-stream-test/string_stream_test_get_string pass",
			"example pass",
			"example/example_simple_test pass",
			"example/example_skip_test skip SKIP (this test should be skipped)",
		}, StatusPass, 0},
		{"kunit-tabs-nested.log", []string{
			"sysctl_test pass",
			"sysctl_test/sysctl_test_dointvec_null_tbl_data pass",
			"sysctl_test/example pass",
			"sysctl_test/example/example_simple_test pass",
			"sysctl_test/example/example_mock_test pass",
			"sysctl_test/sysctl_test_dointvec_table_len_is_zero pass",
			"sysctl_test/sysctl_test_dointvec_table_read_but_position_set pass",
			"example pass",
			"example/example_simple_test pass",
			"example/example_mock_test pass",
		}, StatusPass, 0},
		{"kunit-attributes.ktap", []string{"suite pass", "suite/test pass"}, StatusPass, 0},
		{"kunit-base64.ktap", []string{
			"base64_performance_tests pass",
			"base64_std_encode_tests pass",
			"base64_std_decode_tests pass",
			"base64_variant_tests pass",
		}, StatusPass, 0},
		{"kselftest-runner.tap", []string{
			"selftests: membarrier: membarrier_test_single_thread pass",
			"selftests: membarrier: membarrier_test_single_thread/sys_membarrier available pass",
			"selftests: membarrier: membarrier_test_single_thread/sys membarrier invalid command test: command = -1, flags = 0, errno = 22. Failed as expected pass",
			"selftests: membarrier: membarrier_test_multi_thread pass",
			"selftests: membarrier: membarrier_test_multi_thread/sys_membarrier available pass",
			"selftests: membarrier: membarrier_test_multi_thread/sys membarrier invalid command test: command = -1, flags = 0, errno = 22. Failed as expected pass",
		}, StatusPass, 0},
		{"kselftest-harness-pcitest.tap", []string{"pcie_ep_doorbell.DOORBELL_TEST pass"}, StatusPass, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d := parseFile(t, tt.file)
			if got := flat(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tests:\n got %q\nwant %q", got, tt.want)
			}
			if got := d.Status(); got != tt.status {
				t.Errorf("Status() = %s, want %s", got, tt.status)
			}
			if len(d.Problems) != tt.problems {
				t.Errorf("problems: %q, want %d", d.Problems, tt.problems)
			}
		})
	}
}

// The diagnostics before a result line, the kernel's own lines among
// them, belong to that test.
func TestParseDiagnostics(t *testing.T) {
	d := parseFile(t, "kselftest-harness-pcitest.tap")
	want := []string{
		"Starting 1 tests from 1 test cases.",
		" RUN           pcie_ep_doorbell.DOORBELL_TEST ...",
		"[   17.996519] offset: 70040",
		"[   17.997904] left: 250 status: 0x240",
		"           OK  pcie_ep_doorbell.DOORBELL_TEST",
	}
	if got := d.Tests[0].Diagnostics; !reflect.DeepEqual(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
	if got, want := d.Diagnostics, []string{"PASSED: 1 / 1 tests passed.", "Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trailing diagnostics:\n got %q\nwant %q", got, want)
	}
	ex := parseFile(t, "ktap-rst-example.ktap")
	t2 := ex.Tests[0].Subtests[2].Subtests[1]
	if want := []string{"test_2: FAIL"}; !reflect.DeepEqual(t2.Diagnostics, want) {
		t.Errorf("test_2's diagnostics %q, want %q", t2.Diagnostics, want)
	}
	if ex.Version != "KTAP version 1" || ex.Plan != 1 || ex.Tests[0].Plan != 3 {
		t.Errorf("version %q plan %d, subtests' plan %d; want KTAP version 1, 1, 3", ex.Version, ex.Plan, ex.Tests[0].Plan)
	}
}

// Output that stops early (a crash, a timeout) fails, saying why.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"short plan", "KTAP version 1\n1..3\nok 1 a\nok 2 b\n", "plan 1..3 but 2 result line(s)"},
		{"crash in a subtest", "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: suite\n  1..2\n  ok 1 a\n[  3.1] BUG: kernel NULL pointer dereference\n", `subtest "suite": no result line after them`},
		{"numbers", "TAP version 13\n1..2\nok 1 a\nok 3 b\n", `test "b" has number 3, want 2`},
		{"bail out", "TAP version 13\n1..1\nok 1 a\nBail out! 1 out of 50 tests failed\n", "bailed out: 1 out of 50 tests failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status() != StatusFail {
				t.Errorf("Status() = %s, want fail", d.Status())
			}
			if !strings.Contains(strings.Join(d.Problems, "\n"), tt.want) {
				t.Errorf("problems %q, want one with %q", d.Problems, tt.want)
			}
		})
	}
}

func TestParseDirectives(t *testing.T) {
	in := "KTAP version 1\n1..6\nok 1 a # SKIP no device\nnot ok 2 b # TIMEOUT 30 seconds\nnot ok 3 c # TODO broken\nok 4 d # rcode=0\nnot ok 5 e # ERROR no memory\nok 6 - f # XFAIL expected\n"
	d, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a skip SKIP (no device)",
		"b fail TIMEOUT (30 seconds)",
		"c skip TODO (broken)",
		"d pass (rcode=0)",
		"e fail ERROR (no memory)",
		"f pass XFAIL (expected)",
	}
	if got := flat(d); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseNoKTAP(t *testing.T) {
	if _, err := Parse("hello\nworld\n"); err == nil || !strings.Contains(err.Error(), "no KTAP") {
		t.Errorf("Parse(plain text) error %v, want one saying there is no KTAP", err)
	}
}

// Write's output parses back into the same document, for every recorded
// sample: what the guest writes, the host reads unchanged.
func TestWriteRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.*tap*")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/*.log")
	for _, f := range append(files, more...) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			d := parseFile(t, filepath.Base(f))
			d.Problems = nil
			var b strings.Builder
			if err := Write(&b, d); err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b.String())
			if err != nil {
				t.Fatalf("Parse(Write()): %v\n%s", err, b.String())
			}
			if len(back.Problems) > 0 {
				t.Errorf("problems in written KTAP: %q\n%s", back.Problems, b.String())
			}
			back.Version, back.Plan = d.Version, d.Plan
			if !reflect.DeepEqual(flat(back), flat(d)) {
				t.Errorf("tests:\n got %q\nwant %q\n%s", flat(back), flat(d), b.String())
			}
			var bb strings.Builder
			if err := Write(&bb, back); err != nil {
				t.Fatal(err)
			}
			if bb.String() != b.String() {
				t.Errorf("second write differs:\n%s\nfirst:\n%s", bb.String(), b.String())
			}
		})
	}
}

func TestWrite(t *testing.T) {
	d := &Document{Tests: []*Test{
		{Name: "6.1", Status: StatusFail, Subtests: []*Test{
			{Name: "insmod", Status: StatusPass},
			{Name: "reply", Status: StatusFail, Diagnostics: []string{"no reply\nsecond line"}},
			{Name: "coverage", Status: StatusSkip, Reason: "not a gcov\nkernel"},
		}},
		{Name: "a # b", Status: StatusSkip},
	}}
	var b strings.Builder
	if err := Write(&b, d); err != nil {
		t.Fatal(err)
	}
	want := `KTAP version 1
1..2
  KTAP version 1
  # Subtest: 6.1
  1..3
  ok 1 insmod
  # no reply
  # second line
  not ok 2 reply
  ok 3 coverage # SKIP not a gcov kernel
not ok 1 6.1
ok 2 a _ b # SKIP
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
