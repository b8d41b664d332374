package debian

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// inRelease is a real InRelease of Debian's bookworm-updates, signed by
// the archive's keys (debian/testdata).
const inReleaseSuite = "bookworm-updates"

// fakeMirror serves the testdata InRelease under prefix for the suites
// given, 404 for anything else; tamper flips a byte of the signed text.
func fakeMirror(t *testing.T, prefix string, tamper bool, suites ...string) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "InRelease."+inReleaseSuite))
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		data = []byte(strings.Replace(string(data), "Debian 12 - Updates", "Debian 12 - Upd4tes", 1))
	}
	mux := http.NewServeMux()
	for _, s := range suites {
		mux.HandleFunc(prefix+"/dists/"+s+"/InRelease", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func needGpgv(t *testing.T) {
	t.Helper()
	if err := proc.NeedTool("gpgv"); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat(Keyring); err != nil {
		t.Skip("no Debian archive keyring: ", err)
	}
}

// writeEtcApt writes a fake /etc/apt with sources.list holding lines.
func writeEtcApt(t *testing.T, lines ...string) string {
	t.Helper()
	etc := t.TempDir()
	os.MkdirAll(filepath.Join(etc, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(etc, "sources.list"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	return etc
}

func clearMirrorEnv(t *testing.T) {
	for _, p := range placeholders {
		t.Setenv(p.env, "")
	}
}

// TestMirrorSkipsThirdPartyDebian: a host whose first "…/debian" source
// is a third-party repository (VirtualBox's layout) gets the real Debian
// mirror listed after it; a repository that serves the suite but not
// signed by Debian (a tampered InRelease) is skipped too.
func TestMirrorSkipsThirdPartyDebian(t *testing.T) {
	needGpgv(t)
	clearMirrorEnv(t)
	vbox := fakeMirror(t, "/virtualbox/debian", false)
	forged := fakeMirror(t, "/forged/debian", true, inReleaseSuite)
	debian := fakeMirror(t, "/debian", false, inReleaseSuite)
	etc := writeEtcApt(t,
		"deb [arch=amd64] "+vbox.URL+"/virtualbox/debian "+inReleaseSuite+" contrib",
		"deb "+forged.URL+"/forged/debian "+inReleaseSuite+" main",
		"deb "+debian.URL+"/debian/ "+inReleaseSuite+" main")
	var log []string
	mc := &MirrorChooser{EtcApt: etc, Logf: func(f string, a ...any) { log = append(log, strings.TrimSpace(fmt.Sprintf(f, a...))) }}
	m, err := mc.Choose(t.Context(), "test", []string{"deb {mirror} " + inReleaseSuite + " main"})
	if err != nil {
		t.Fatal(err)
	}
	if want := debian.URL + "/debian"; m.Debian != want {
		t.Fatalf("mirror: want %s, got %s\nlog:\n%s", want, m.Debian, strings.Join(log, "\n"))
	}
	joined := strings.Join(log, "\n")
	for _, want := range []string{"skipping {mirror} mirror " + vbox.URL + "/virtualbox/debian", "404", "not signed by a key", "{mirror} mirror " + debian.URL + "/debian (from " + filepath.Join(etc, "sources.list") + ")"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log lacks %q:\n%s", want, joined)
		}
	}
}

// TestMirrorNoneServes: when no candidate verifies, the error lists each
// one with its reason and names the variable that fixes it.
func TestMirrorNoneServes(t *testing.T) {
	needGpgv(t)
	clearMirrorEnv(t)
	forged := fakeMirror(t, "/debian", true, inReleaseSuite)
	t.Setenv("KMODTEST_MIRROR", forged.URL+"/debian")
	mc := &MirrorChooser{EtcApt: writeEtcApt(t)}
	_, err := mc.Choose(t.Context(), "test", []string{"deb {mirror} " + inReleaseSuite + " main"})
	if err == nil {
		t.Fatal("a mirror with a forged InRelease was accepted")
	}
	for _, want := range []string{forged.URL + "/debian (from $KMODTEST_MIRROR)", "not signed", "set KMODTEST_MIRROR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestMirrorSuiteMovedToArchive: a suite the mirror answers 404 for but
// the archive of old releases serves is taken from the archive, with a
// message that says so and how to follow it in the matrix.
func TestMirrorSuiteMovedToArchive(t *testing.T) {
	needGpgv(t)
	clearMirrorEnv(t)
	mirror := fakeMirror(t, "/debian", false)
	archive := fakeMirror(t, "/debian", false, inReleaseSuite)
	t.Setenv("KMODTEST_MIRROR", mirror.URL+"/debian")
	t.Setenv("KMODTEST_ARCHIVE_MIRROR", archive.URL+"/debian")
	var log []string
	mc := &MirrorChooser{EtcApt: writeEtcApt(t), Logf: func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }}
	m, err := mc.Choose(t.Context(), "fetch 5.10", []string{"deb {mirror} " + inReleaseSuite + " main"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Debian != archive.URL+"/debian" {
		t.Fatalf("moved suite: want the archive %s, got %s", archive.URL, m.Debian)
	}
	joined := strings.Join(log, "\n")
	if !strings.Contains(joined, "has moved from the Debian mirrors to Debian's archive of old releases") || !strings.Contains(joined, "writing {archive} instead of {mirror}") {
		t.Errorf("no message about the move:\n%s", joined)
	}

	// Written as data, {archive} is used directly.
	m, err = mc.Choose(t.Context(), "fetch 5.10", []string{"deb {archive} " + inReleaseSuite + " main"})
	if err != nil || m.Archive != archive.URL+"/debian" {
		t.Fatalf("{archive}: got %+v, %v", m, err)
	}
	got := SourcesList([]string{"deb {archive} " + inReleaseSuite + " main"}, m)
	if !strings.Contains(got, archive.URL+"/debian "+inReleaseSuite) {
		t.Errorf("{archive} not substituted: %s", got)
	}

	// Unknown placeholders are errors, not literal URIs.
	if _, err := mc.Choose(t.Context(), "x", []string{"deb {mirorr} sid main"}); err == nil || !strings.Contains(err.Error(), "unknown placeholder {mirorr}") {
		t.Errorf("misspelt placeholder: %v", err)
	}
	var moved *SuiteMovedError
	if errors.As(err, &moved) {
		t.Error("misspelt placeholder reported as a moved suite")
	}
}

func TestPlaceholderSuites(t *testing.T) {
	got := placeholderSuites([]string{"deb {mirror} bookworm main", "deb [arch=amd64] {security} bookworm-security main", "deb http://x/debian sid main"})
	if len(got) != 2 || got["{mirror}"][0] != "bookworm" || got["{security}"][0] != "bookworm-security" {
		t.Fatalf("unexpected %v", got)
	}
}

// TestInReleaseOneKeyEnough: Debian signs with two keys; a keyring that
// has only one of them (an older distribution's) still accepts the file,
// as apt does, but never a tampered one.
func TestInReleaseOneKeyEnough(t *testing.T) {
	needGpgv(t)
	data, err := os.ReadFile(filepath.Join("testdata", "InRelease."+inReleaseSuite))
	if err != nil {
		t.Fatal(err)
	}
	keyring, _ := filepath.Abs(filepath.Join("testdata", "keyring-bookworm-only.gpg"))
	signed, err := verifyInRelease(t.Context(), keyring, data)
	if err != nil {
		t.Fatalf("one good signature of two was refused: %v", err)
	}
	if !releaseNames(signed, inReleaseSuite) {
		t.Fatalf("signed text lacks the suite:\n%.200s", signed)
	}
	bad := []byte(strings.Replace(string(data), "Debian 12 - Updates", "Debian 12 - Upd4tes", 1))
	if _, err := verifyInRelease(t.Context(), keyring, bad); err == nil {
		t.Fatal("a tampered InRelease was accepted")
	}
}
