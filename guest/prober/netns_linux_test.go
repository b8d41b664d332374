package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/greet/rawnl"
	"golang.org/x/sys/unix"
)

func TestChildReportRoundTrip(t *testing.T) {
	want := childReport{UID: 0, GID: 0, CapEff: 0x1ffffffffff, Netns: "net:[4026532256]", Userns: "user:[4026532255]", UIDMap: "0,65534,1", PID: 231, Port: 231}
	got, err := parseChildReport(want.String())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unexpected report (-want +got):\n%s", diff)
	}
	// A kernel without user namespaces has no userns and no uid map.
	bare := childReport{UID: nobody, GID: nobody, Netns: "net:[4026531840]", PID: 7}
	if got, err := parseChildReport(bare.String()); err != nil || got != bare {
		t.Fatalf("parse %q: got %+v, %v", bare.String(), got, err)
	}
}

func TestParseChildReportErrors(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"uid 65534: dial: permission denied", `does not start with "ok:"`},
		{"ok: uid=1 gid", `field "gid" is not key=value`},
		{"ok: uid=x gid=0 capeff=0 pid=1 port=0 netns=net:[1]", "uid: strconv.ParseUint"},
		{"ok: uid=0 gid=0 capeff=0 pid=1 port=0", "no netns"},
		{"ok: gid=0 capeff=0 pid=1 port=0 netns=net:[1]", "no uid"},
	} {
		_, err := parseChildReport(tt.line)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseChildReport(%q):\n- want error containing %q\n-  got %v", tt.line, tt.want, err)
		}
	}
}

// nsidMessage builds an nsid message as the kernel's rtnl_net_fill() does:
// a 1-byte rtgenmsg padded to 4, then attributes.
func nsidMessage(typ uint16, attrs ...[]byte) rawnl.Message {
	data := make([]byte, rtgenmsgLen)
	for _, a := range attrs {
		data = append(data, a...)
	}
	return rawnl.Message{Header: rawnl.Header{Len: uint32(rawnl.HeaderLen + len(data)), Type: typ}, Data: data}
}

// attr encodes one netlink attribute with a 4-byte value.
func attr(typ uint16, v int32) []byte {
	b := binary.NativeEndian.AppendUint16(nil, 8)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return binary.NativeEndian.AppendUint32(b, uint32(v))
}

func TestParseNsid(t *testing.T) {
	for _, tt := range []struct {
		name    string
		m       rawnl.Message
		want    int32
		wantErr string
	}{
		{name: "delnsid", m: nsidMessage(unix.RTM_DELNSID, attr(unix.NETNSA_NSID, 3)), want: 3},
		{name: "getnsid answer with current nsid", m: nsidMessage(unix.RTM_NEWNSID, attr(unix.NETNSA_NSID, 0), attr(5 /* NETNSA_CURRENT_NSID */, 7)), want: 0},
		{name: "not assigned", m: nsidMessage(unix.RTM_NEWNSID, attr(unix.NETNSA_NSID, -1)), want: -1},
		{name: "other type", m: nsidMessage(unix.RTM_NEWLINK, attr(unix.NETNSA_NSID, 3)), wantErr: "not RTM_NEWNSID or RTM_DELNSID"},
		{name: "no family header", m: rawnl.Message{Header: rawnl.Header{Type: unix.RTM_DELNSID}, Data: []byte{0}}, wantErr: "shorter than its 4-byte family header"},
		{name: "no nsid", m: nsidMessage(unix.RTM_DELNSID, attr(unix.NETNSA_PID, 3)), wantErr: "without NETNSA_NSID"},
		{name: "truncated attribute", m: nsidMessage(unix.RTM_DELNSID, attr(unix.NETNSA_NSID, 3)[:6]), wantErr: "attributes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNsid(tt.m)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("unexpected error:\n- want: %q\n-  got: %v", tt.wantErr, err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("nsid: want %d, got %d", tt.want, got)
			}
		})
	}
}

// TestNsidRequest: the request has the layout rtnl_net_newid() parses,
// and the parser reads back its nsid.
func TestNsidRequest(t *testing.T) {
	b, err := nsidRequest(unix.RTM_NEWNSID, rawnl.FlagRequest|rawnl.FlagAck, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != rawnl.HeaderLen+rtgenmsgLen {
		t.Fatalf("request without attributes: want %d bytes, got %d", rawnl.HeaderLen+rtgenmsgLen, len(b))
	}
	b, err = nsidRequest(unix.RTM_NEWNSID, rawnl.FlagRequest|rawnl.FlagAck, 9, nsidAttrs(-1, 5))
	if err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, rtgenmsgLen), append(attr(unix.NETNSA_NSID, -1), attr(unix.NETNSA_FD, 5)...)...)
	msgs, err := rawnl.Parse(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse the request: %v, %d messages", err, len(msgs))
	}
	h := msgs[0].Header
	if h.Type != unix.RTM_NEWNSID || h.Flags != rawnl.FlagRequest|rawnl.FlagAck || h.Seq != 9 || int(h.Len) != len(b) {
		t.Errorf("header: got %+v", h)
	}
	if diff := cmp.Diff(want, msgs[0].Data); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if nsid, err := parseNsid(msgs[0]); err != nil || nsid != -1 {
		t.Errorf("parseNsid of the request: got %d, %v", nsid, err)
	}
}

// TestApplySysctls: a setting that is fine is left alone, one that is
// not is set and restored, a missing one is skipped.
func TestApplySysctls(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	for p, v := range map[string]string{good: "1\n", bad: "0\n"} {
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	is1 := func(v string) bool { return v == "1" }
	restore, notes, err := applySysctls([]sysctlNeed{
		{path: good, ok: is1, set: "1", why: "good"},
		{path: bad, ok: is1, set: "1", why: "bad"},
		{path: filepath.Join(dir, "missing"), ok: is1, set: "1", why: "missing"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{good + " is 1", bad + " was 0 (bad): set to 1 for the step, restored after"}
	if diff := cmp.Diff(want, notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(bad); got != "1\n" {
		t.Errorf("during the step %s holds %q, want \"1\\n\"", bad, got)
	}
	restore()
	if got := read(bad); got != "0\n" {
		t.Errorf("after restore %s holds %q, want \"0\\n\"", bad, got)
	}
	if got := read(good); got != "1\n" {
		t.Errorf("%s was changed to %q", good, got)
	}
}
