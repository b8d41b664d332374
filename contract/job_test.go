package contract

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJobRoundTrip(t *testing.T) {
	module := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F', 0, '\n'}, 1000)
	var buf bytes.Buffer
	buf.WriteString("\x00noise\n")
	if err := WriteJob(&buf, Job{Steps: CoreSteps}, module); err != nil {
		t.Fatal(err)
	}
	job, got, err := ReadJob(&buf)
	if err != nil {
		t.Fatalf("ReadJob: %v", err)
	}
	if diff := cmp.Diff(CoreSteps, job.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if !bytes.Equal(got, module) {
		t.Errorf("module: want %d bytes back unchanged, got %d bytes", len(module), len(got))
	}
}

func TestReadJobErrors(t *testing.T) {
	var good bytes.Buffer
	if err := WriteJob(&good, Job{Steps: []string{StepInsmod}}, []byte("module")); err != nil {
		t.Fatal(err)
	}
	// Flip a bit of the gzip trailer's CRC: the data still inflates.
	corrupt := append([]byte(nil), good.Bytes()...)
	corrupt[len(corrupt)-6] ^= 1
	short := good.Bytes()[:good.Len()-2]
	// A job whose checksum names other bytes than those sent.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("module"))
	zw.Close()
	js := `{"steps":["insmod"],"module_sha256":"00"}`
	wrongSum := fmt.Sprintf("KMODTEST-JOB %d %d\n%s%s", len(js), gz.Len(), js, gz.String())
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "read job header"},
		{"bad header", "KMODTEST-JOB x\n", "want KMODTEST-JOB"},
		{"bad lengths", "KMODTEST-JOB 5 -1\n", "bad lengths"},
		{"huge module", "KMODTEST-JOB 5 999999999999\n", "bad lengths"},
		{"cut short", string(short), "read module"},
		{"corrupt", string(corrupt), "read module"},
		{"wrong checksum", wrongSum, "module arrived corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadJob(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}
