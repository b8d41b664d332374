package kernelio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kmodtest/kmodtest/greet"
	"golang.org/x/sys/unix"
)

const kmsgPath = "/dev/kmsg"

// Kmsg limits per step: the first kmsgHead records are always kept, then
// only warnings or worse, up to kmsgMax lines in all. A 12,000-line BUG
// report must not flood the result port; the host keeps the full console.
const (
	kmsgHead = 100
	kmsgMax  = 400
)

// A kmsgRecord is one /dev/kmsg record.
type kmsgRecord struct {
	Level int // syslog level 0 (emerg) to 7 (debug)
	Seq   uint64
	Text  string
}

// parseKmsgRecord parses one record as read(2) returns it:
// "prio,seq,usec,flags[,...];message\n" followed by " KEY=value\n"
// continuation lines, which it ignores.
func parseKmsgRecord(b []byte) (kmsgRecord, error) {
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return kmsgRecord{}, fmt.Errorf("kmsg record %q: no ';'", greet.Truncate(string(b), 60))
	}
	fields := bytes.Split(b[:semi], []byte(","))
	if len(fields) < 3 {
		return kmsgRecord{}, fmt.Errorf("kmsg record %q: want prio,seq,usec prefix", greet.Truncate(string(b), 60))
	}
	prio, err := strconv.Atoi(string(fields[0]))
	if err != nil {
		return kmsgRecord{}, fmt.Errorf("kmsg record %q: priority: %w", greet.Truncate(string(b), 60), err)
	}
	seq, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return kmsgRecord{}, fmt.Errorf("kmsg record %q: sequence: %w", greet.Truncate(string(b), 60), err)
	}
	text := b[semi+1:]
	if nl := bytes.IndexByte(text, '\n'); nl >= 0 {
		text = text[:nl]
	}
	return kmsgRecord{Level: prio & 7, Seq: seq, Text: string(text)}, nil
}

// A kmsgLog collects the records of one step within the caps.
type kmsgLog struct {
	lines   []string
	omitted int // records left out
	warn    int // of them, warnings or worse
	lost    int // times records were overwritten before we read them
}

func (l *kmsgLog) add(r kmsgRecord) {
	switch {
	case len(l.lines) < kmsgHead:
		l.lines = append(l.lines, r.Text)
	case r.Level <= 4 && len(l.lines) < kmsgMax:
		l.lines = append(l.lines, r.Text)
	default:
		l.omitted++
		if r.Level <= 4 {
			l.warn++
		}
	}
}

// result returns the kept lines with notes about anything left out.
func (l *kmsgLog) result() []string {
	out := l.lines
	if l.omitted > 0 {
		out = append(out, fmt.Sprintf("... kmodtest: %d more kmsg lines not shown (%d of them warnings or worse); after the first %d only warnings or worse are kept",
			l.omitted, l.warn, kmsgHead))
	}
	if l.lost > 0 {
		out = append(out, fmt.Sprintf("... kmodtest: kmsg records were overwritten before they could be read (%d times)", l.lost))
	}
	return out
}

// A KmsgTail reads the kernel log records written after it was opened.
type KmsgTail struct {
	fd  int
	buf []byte
}

// OpenKmsgTail opens /dev/kmsg at its end.
func OpenKmsgTail() (*KmsgTail, error) {
	fd, err := unix.Open(kmsgPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", kmsgPath, err)
	}
	if _, err := unix.Seek(fd, 0, io.SeekEnd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seek to the end of %s: %w", kmsgPath, err)
	}
	return &KmsgTail{fd: fd, buf: make([]byte, 16<<10)}, nil
}

// Read returns the records available now, and how many times records
// were overwritten before they could be read. A record that does not
// parse is returned whole as a debug-level text.
func (t *KmsgTail) Read() (recs []kmsgRecord, lost int, err error) {
	for {
		n, err := unix.Read(t.fd, t.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return recs, lost, nil
		case errors.Is(err, unix.EPIPE):
			lost++
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return recs, lost, fmt.Errorf("read %s: %w", kmsgPath, err)
		case n == 0:
			return recs, lost, nil
		}
		r, err := parseKmsgRecord(t.buf[:n])
		if err != nil {
			r = kmsgRecord{Level: 7, Text: string(t.buf[:n])}
		}
		recs = append(recs, r)
	}
}

func (t *KmsgTail) Close() { unix.Close(t.fd) }

// A KmsgCursor reads the kernel log from a mark on.
type KmsgCursor struct {
	*KmsgTail
	marker string
}

// MarkKmsg opens /dev/kmsg at its end and writes the marker line, so
// that the records written after it (a step's) can be read afterwards.
func MarkKmsg(marker string) (*KmsgCursor, error) {
	t, err := OpenKmsgTail()
	if err != nil {
		return nil, err
	}
	k := &KmsgCursor{KmsgTail: t, marker: marker}
	w, err := os.OpenFile(kmsgPath, os.O_WRONLY, 0)
	if err == nil {
		_, err = w.WriteString("<6>" + k.marker + "\n")
		w.Close()
	}
	if err != nil {
		return k, fmt.Errorf("write kmsg marker: %w", err)
	}
	return k, nil
}

// Drain reads every record available now and closes the cursor.
func (k *KmsgCursor) Drain() ([]string, error) {
	defer k.Close()
	recs, lost, err := k.Read()
	log := kmsgLog{lost: lost}
	skippedMarker := false
	for _, r := range recs {
		if !skippedMarker && r.Text == k.marker {
			skippedMarker = true
			continue
		}
		log.add(r)
	}
	return log.result(), err
}

// ModuleLines returns the module's kernel log lines that tail has not
// returned yet, unescaped.
func ModuleLines(tail *KmsgTail) ([]string, error) {
	recs, _, err := tail.Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		if line := string(unescapeKmsg(r.Text)); strings.HasPrefix(line, greet.ModuleName+": ") {
			out = append(out, line)
		}
	}
	return out, nil
}

// unescapeKmsg undoes /dev/kmsg's escaping of a record's text: the
// kernel writes every byte below 0x20, from 0x7f up, and the backslash
// as \xNN.
func unescapeKmsg(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		if text[i] == '\\' && i+3 < len(text) && text[i+1] == 'x' {
			if v, err := strconv.ParseUint(text[i+2:i+4], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, text[i])
	}
	return out
}
