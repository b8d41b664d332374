package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// Default archive URIs, used when neither the environment nor the host's
// apt sources name a mirror that serves a suite.
const (
	defaultMirror          = "http://deb.debian.org/debian"
	defaultSecurityMirror  = "http://deb.debian.org/debian-security"
	defaultArchive         = "http://archive.debian.org/debian"
	defaultArchiveSecurity = "http://archive.debian.org/debian-security"
)

// Mirrors are the archive URIs substituted for the placeholders of
// sources lines: {mirror}, {security}, and for suites that have left the
// mirrors for Debian's archive of old releases, {archive} and
// {archive-security}.
type Mirrors struct {
	Debian          string
	Security        string
	Archive         string
	ArchiveSecurity string
}

// fields maps each placeholder to its field in m.
func (m *Mirrors) fields() map[string]*string {
	return map[string]*string{
		"{mirror}":           &m.Debian,
		"{security}":         &m.Security,
		"{archive}":          &m.Archive,
		"{archive-security}": &m.ArchiveSecurity,
	}
}

// A mirrorCandidate is a URI to try and where it came from, for messages.
type mirrorCandidate struct {
	uri, from string
}

// A placeholder is a sources-line placeholder: the environment variable
// that overrides it, the URI ending that marks host sources as candidates
// ("" for none) and the default.
type placeholder struct {
	env, hostSuffix, def string
	// archive is the placeholder of Debian's archive of old releases
	// that serves the same suites once they leave the mirrors.
	archive string
}

// placeholders are the placeholders sources lines may use.
var placeholders = map[string]placeholder{
	"{mirror}":           {"KMODTEST_MIRROR", "/debian", defaultMirror, "{archive}"},
	"{security}":         {"KMODTEST_SECURITY_MIRROR", "/debian-security", defaultSecurityMirror, "{archive-security}"},
	"{archive}":          {"KMODTEST_ARCHIVE_MIRROR", "", defaultArchive, ""},
	"{archive-security}": {"KMODTEST_ARCHIVE_SECURITY_MIRROR", "", defaultArchiveSecurity, ""},
}

// candidates lists, in order of preference, the URIs to try for a
// placeholder: the environment variable if set (then nothing else), the
// host's apt sources, the default.
func candidates(ph string, host hostURIs) []mirrorCandidate {
	p := placeholders[ph]
	if v := os.Getenv(p.env); v != "" {
		return []mirrorCandidate{{strings.TrimRight(v, "/"), "$" + p.env}}
	}
	var out []mirrorCandidate
	seen := map[string]bool{}
	if p.hostSuffix != "" {
		for _, u := range host.uris {
			if strings.HasSuffix(u.uri, p.hostSuffix) && !seen[u.uri] {
				seen[u.uri] = true
				out = append(out, u)
			}
		}
	}
	if !seen[p.def] {
		out = append(out, mirrorCandidate{p.def, "default"})
	}
	return out
}

// hostURIs are the URIs of the host's apt sources.
type hostURIs struct {
	uris []mirrorCandidate
}

// readHostURIs reads etcDir's sources.list, sources.list.d/*.list and
// *.sources. Missing or unreadable files are skipped: this only proposes
// candidates, each is verified before use.
func readHostURIs(etcDir string) hostURIs {
	var h hostURIs
	add := func(file string, uris []string) {
		for _, u := range uris {
			h.uris = append(h.uris, mirrorCandidate{strings.TrimRight(u, "/"), file})
		}
	}
	main := filepath.Join(etcDir, "sources.list")
	if data, err := os.ReadFile(main); err == nil {
		add(main, oneLineURIs(string(data)))
	}
	lists, _ := filepath.Glob(filepath.Join(etcDir, "sources.list.d", "*.list"))
	for _, f := range lists {
		if data, err := os.ReadFile(f); err == nil {
			add(f, oneLineURIs(string(data)))
		}
	}
	deb822, _ := filepath.Glob(filepath.Join(etcDir, "sources.list.d", "*.sources"))
	for _, f := range deb822 {
		if data, err := os.ReadFile(f); err == nil {
			add(f, deb822URIs(string(data)))
		}
	}
	return h
}

// placeholderSuites returns, for each placeholder used in lines, the
// suites the lines ask of it ("{mirror}" → bookworm).
func placeholderSuites(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, line := range lines {
		f := strings.Fields(line)
		i := 1
		if i < len(f) && strings.HasPrefix(f[i], "[") {
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			i++
		}
		if i+1 >= len(f) || !strings.HasPrefix(f[i], "{") {
			continue
		}
		out[f[i]] = append(out[f[i]], f[i+1])
	}
	return out
}

// errSuiteMissing is a mirror answering 404 for a suite's InRelease.
var errSuiteMissing = errors.New("suite not on this mirror (404)")

// A MirrorChooser finds, for sources lines, mirrors that really serve
// their suites: a candidate is used only when its dists/SUITE/InRelease
// carries a good signature by a key of the Debian archive keyring and
// names SUITE. Third-party repositories whose URI happens to end in
// /debian (VirtualBox's …/virtualbox/debian) fail that and are skipped.
type MirrorChooser struct {
	// EtcApt is the host's apt directory (default /etc/apt).
	EtcApt string
	// Keyring is the keyring to verify with (default Keyring).
	Keyring string
	// Client fetches InRelease files (default: a client with a timeout).
	Client *http.Client
	// Logf receives which mirror was used and why others were not.
	Logf func(format string, args ...any)
}

func (mc *MirrorChooser) logf(format string, args ...any) {
	if mc.Logf != nil {
		mc.Logf(format, args...)
	}
}

// Choose returns mirrors for every placeholder lines use. A suite that
// none of the Debian mirrors has but Debian's archive of old releases
// has is served from the archive, with a message saying it moved and
// how to follow it in kernels/matrix.json.
func (mc *MirrorChooser) Choose(ctx context.Context, what string, lines []string) (Mirrors, error) {
	etc := mc.EtcApt
	if etc == "" {
		etc = "/etc/apt"
	}
	host := readHostURIs(etc)
	var m Mirrors
	fields := m.fields()
	for ph, suites := range placeholderSuites(lines) {
		field, ok := fields[ph]
		if _, known := placeholders[ph]; !ok || !known {
			return Mirrors{}, fmt.Errorf("%s: unknown placeholder %s in sources lines (known: {mirror}, {security}, {archive}, {archive-security})", what, ph)
		}
		uri, err := mc.choose(ctx, what, ph, suites, host)
		if err != nil {
			var moved *SuiteMovedError
			if !errors.As(err, &moved) {
				return Mirrors{}, err
			}
			mc.logf("%s: %v", what, moved)
			uri = moved.Archive
		}
		*field = uri
	}
	return m, nil
}

// choose returns the first candidate for placeholder ph that serves all
// suites.
func (mc *MirrorChooser) choose(ctx context.Context, what, ph string, suites []string, host hostURIs) (string, error) {
	var reasons []string
	missing := 0
	cands := candidates(ph, host)
	for _, c := range cands {
		bad := mc.serves(ctx, c.uri, suites)
		if bad == nil {
			mc.logf("%s: %s mirror %s (from %s) serves %s", what, ph, c.uri, c.from, strings.Join(suites, " "))
			return c.uri, nil
		}
		if errors.Is(bad, errSuiteMissing) {
			missing++
		}
		reasons = append(reasons, fmt.Sprintf("%s (from %s): %v", c.uri, c.from, bad))
		if len(cands) > 1 {
			mc.logf("%s: skipping %s mirror %s (from %s): %v", what, ph, c.uri, c.from, bad)
		}
	}
	archivePH := placeholders[ph].archive
	if missing > 0 && archivePH != "" {
		for _, c := range candidates(archivePH, host) {
			bad := mc.serves(ctx, c.uri, suites)
			if bad == nil {
				return "", &SuiteMovedError{Suites: suites, Placeholder: ph, ArchivePlaceholder: archivePH, Archive: c.uri}
			}
			reasons = append(reasons, fmt.Sprintf("nor Debian's archive of old releases %s (from %s): %v", c.uri, c.from, bad))
		}
	}
	hint := ""
	if archivePH != "" {
		hint = fmt.Sprintf("; if the suite has moved to archive.debian.org, write %s instead of %s in its sources lines (kernels/matrix.json)", archivePH, ph)
	}
	return "", fmt.Errorf("%s: no Debian mirror serves %s (checked dists/SUITE/InRelease against %s):\n  %s\nset %s to a Debian mirror that does%s",
		what, strings.Join(suites, " "), mc.keyring(), strings.Join(reasons, "\n  "), placeholders[ph].env, hint)
}

func (mc *MirrorChooser) keyring() string {
	if mc.Keyring != "" {
		return mc.Keyring
	}
	return Keyring
}

// A SuiteMovedError says that suites are no longer on the Debian mirrors
// but are on Debian's archive of old releases.
type SuiteMovedError struct {
	Suites                                   []string
	Placeholder, ArchivePlaceholder, Archive string
}

func (e *SuiteMovedError) Error() string {
	return fmt.Sprintf("%s has moved from the Debian mirrors to Debian's archive of old releases: using %s. Make it permanent by writing %s instead of %s in its sources lines in kernels/matrix.json",
		strings.Join(e.Suites, " "), e.Archive, e.ArchivePlaceholder, e.Placeholder)
}

// serves checks every suite on uri and returns the first failure.
func (mc *MirrorChooser) serves(ctx context.Context, uri string, suites []string) error {
	for _, s := range suites {
		if err := mc.verifySuite(ctx, uri, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// verifySuite downloads uri/dists/suite/InRelease and checks it with gpgv
// against the keyring and that it names suite (as Suite or Codename).
func (mc *MirrorChooser) verifySuite(ctx context.Context, uri, suite string) error {
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		return errors.New("not an http(s) URI")
	}
	client := mc.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri+"/dists/"+suite+"/InRelease", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return errSuiteMissing
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dists/%s/InRelease: %s", suite, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read InRelease: %w", err)
	}
	signed, err := verifyInRelease(ctx, mc.keyring(), data)
	if err != nil {
		return err
	}
	if !releaseNames(signed, suite) {
		return fmt.Errorf("dists/%s/InRelease names another suite", suite)
	}
	return nil
}

// verifyInRelease checks a clear-signed InRelease with gpgv and returns
// the signed text.
func verifyInRelease(ctx context.Context, keyring string, data []byte) ([]byte, error) {
	if err := proc.NeedTool("gpgv"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kmodtest-inrelease-")
	if err != nil {
		return nil, err
	}
	defer cachefs.RemoveAll(filepath.Dir(dir), dir)
	in := filepath.Join(dir, "InRelease")
	out := filepath.Join(dir, "Release")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		return nil, err
	}
	// gpgv fails when any one signature's key is missing, and Debian
	// signs each suite with two keys: a host keyring without the newest
	// key (an older Ubuntu's) would reject every mirror. Judge as apt
	// does instead: at least one valid signature, and no bad one.
	cmd := proc.Command(ctx, "gpgv", "--status-fd", "1", "--keyring", keyring, "--output", out, in)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var status, msg bytes.Buffer
	cmd.Stdout = &status
	cmd.Stderr = &msg
	runErr := proc.Run(cmd)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if !goodSignature(status.String()) {
		detail := strings.Join(proc.TailLines(msg.String(), 2), "; ")
		if detail == "" && runErr != nil {
			detail = runErr.Error()
		}
		return nil, fmt.Errorf("InRelease not signed by a key of %s (not a Debian mirror?): gpgv: %s", keyring, detail)
	}
	return os.ReadFile(out)
}

// goodSignature judges gpgv's status lines: at least one VALIDSIG and
// no BADSIG.
func goodSignature(status string) bool {
	valid := false
	for _, line := range strings.Split(status, "\n") {
		switch {
		case strings.HasPrefix(line, "[GNUPG:] BADSIG "):
			return false
		case strings.HasPrefix(line, "[GNUPG:] VALIDSIG "):
			valid = true
		}
	}
	return valid
}

// releaseNames reports whether a Release file's Suite or Codename is suite.
func releaseNames(release []byte, suite string) bool {
	sc := bufio.NewScanner(strings.NewReader(string(release)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && (k == "Suite" || k == "Codename") && strings.TrimSpace(v) == suite {
			return true
		}
	}
	return false
}
