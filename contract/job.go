package contract

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A Job is what the host hands a waiting prober: the module to load and
// the steps to run. It travels on JobPort as one header line,
//
//	KMODTEST-JOB <json length> <module length>\n
//
// then the JSON of the Job and the module, gzipped: the port moves some
// ten kilobytes a second under TCG, so every byte counts. The JSON
// carries the module's SHA-256, so a transfer that lost or changed a byte
// is named as such instead of failing insmod in a puzzling way.
type Job struct {
	Steps     []string `json:"steps"`
	ModuleSHA string   `json:"module_sha256"`
	// GcovSnapshots is Config.GcovSnapshots for this job's module: a
	// saved guest serves modules built with and without gcov.
	GcovSnapshots bool `json:"gcov_snapshots,omitempty"`
}

const jobMagic = "KMODTEST-JOB"

// maxJobModule bounds the module size a prober accepts: far above any
// real module, low enough that a corrupt header cannot exhaust memory.
const maxJobModule = 64 << 20

// WriteJob writes job and the module to w in the job format; it sets
// the job's ModuleSHA.
func WriteJob(w io.Writer, job Job, module []byte) error {
	sum := sha256.Sum256(module)
	job.ModuleSHA = hex.EncodeToString(sum[:])
	js, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(module); err != nil {
		return fmt.Errorf("compress module: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress module: %w", err)
	}
	header := fmt.Sprintf("%s %d %d\n", jobMagic, len(js), gz.Len())
	for _, b := range [][]byte{[]byte(header), js, gz.Bytes()} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("send job: %w", err)
		}
	}
	return nil
}

// ReadJob reads one job from r: the job and the module's bytes. Bytes
// before the header line (line noise from a port just opened) are skipped.
func ReadJob(r io.Reader) (Job, []byte, error) {
	br := bufio.NewReader(r)
	var header string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return Job{}, nil, fmt.Errorf("read job header: %w", err)
		}
		if i := strings.Index(line, jobMagic+" "); i >= 0 {
			header = strings.TrimSpace(line[i:])
			break
		}
	}
	f := strings.Fields(header)
	if len(f) != 3 {
		return Job{}, nil, fmt.Errorf("job header %q: want %s <json length> <module length>", header, jobMagic)
	}
	jlen, err1 := strconv.Atoi(f[1])
	mlen, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil || jlen <= 0 || jlen > 1<<20 || mlen < 0 || mlen > maxJobModule {
		return Job{}, nil, fmt.Errorf("job header %q: bad lengths", header)
	}
	js := make([]byte, jlen)
	if _, err := io.ReadFull(br, js); err != nil {
		return Job{}, nil, fmt.Errorf("read job: %w", err)
	}
	var job Job
	if err := json.Unmarshal(js, &job); err != nil {
		return Job{}, nil, fmt.Errorf("decode job: %w", err)
	}
	zr, err := gzip.NewReader(io.LimitReader(br, int64(mlen)))
	if err != nil {
		return Job{}, nil, fmt.Errorf("read module (%d bytes): %w", mlen, err)
	}
	module, err := io.ReadAll(io.LimitReader(zr, maxJobModule+1))
	if err != nil {
		return Job{}, nil, fmt.Errorf("read module (%d bytes): %w", mlen, err)
	}
	sum := sha256.Sum256(module)
	if got := hex.EncodeToString(sum[:]); got != job.ModuleSHA {
		return Job{}, nil, fmt.Errorf("module arrived corrupt: sha256 %s, want %s", got, job.ModuleSHA)
	}
	return job, module, nil
}
