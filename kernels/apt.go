package kernels

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// DebianKeyring verifies the archive's Release files.
const DebianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// oneLineURIs returns the URIs of "deb" lines in sources.list format.
func oneLineURIs(text string) []string {
	var uris []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "deb" {
			continue
		}
		i := 1
		if strings.HasPrefix(f[i], "[") {
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			i++
		}
		if i < len(f) {
			uris = append(uris, f[i])
		}
	}
	return uris
}

// deb822URIs returns the URIs of enabled "Types: deb" stanzas.
func deb822URIs(text string) []string {
	var uris []string
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && !strings.HasPrefix(k, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		uris = append(uris, strings.Fields(fields["uris"])...)
	}
	return uris
}

// SourcesList renders sources lines for apt: the placeholders ({mirror},
// {security}, {archive}, {archive-security}) are substituted and lines
// without [options] get signed-by the archive keyring, so apt verifies the
// Release files whatever the host trusts.
func SourcesList(lines []string, m Mirrors) string {
	var b strings.Builder
	for _, line := range lines {
		for ph, v := range m.fields() {
			if *v != "" {
				line = strings.ReplaceAll(line, ph, *v)
			}
		}
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[1], "[") {
			f = append([]string{f[0], "[signed-by=" + DebianKeyring + "]"}, f[1:]...)
		}
		b.WriteString(strings.Join(f, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// An aptConfig is a private apt state directory: its own configuration
// file, sources list, package lists and download cache, nothing from the
// host's apt state.
type aptConfig struct {
	dir string
	// arch is the architecture whose packages apt resolves ("" is the
	// host's). For a foreign one the host's is added too, so that
	// "name:HOSTARCH" finds the host tools (linux-kbuild) of the release.
	arch arch.Arch
}

// confPath is the private configuration file, passed through APT_CONFIG.
func (a aptConfig) confPath() string { return filepath.Join(a.dir, "apt.conf") }

// hostProxyKeys are the only host apt settings carried into the private
// configuration: a site's proxy (apt-cacher-ng, a corporate proxy) must
// keep working, its hooks must not run.
var hostProxyKeys = []string{"Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::http::Proxy-Auto-Detect"}

// conf renders the private configuration. apt reads the file named by
// APT_CONFIG before anything else, and this one points Dir::Etc::Main and
// Dir::Etc::Parts away from /etc/apt, so the host's apt.conf.d (its
// Post-Invoke hooks, docker-clean, appstream) is never read: "-o
// Dir::Etc::Parts=" comes too late for that, apt has read the parts
// before it parses -o options. proxy holds host settings to keep.
func (a aptConfig) conf(proxy map[string]string) string {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s %s;\n", k, strconv.Quote(v)) }
	set("Dir::Etc::Main", "/dev/null")
	set("Dir::Etc::Parts", filepath.Join(a.dir, "apt.conf.d"))
	set("Dir::Etc::SourceList", filepath.Join(a.dir, "sources.list"))
	set("Dir::Etc::SourceParts", "/dev/null")
	set("Dir::Etc::Preferences", "/dev/null")
	set("Dir::Etc::PreferencesParts", "/dev/null")
	set("Dir::State", filepath.Join(a.dir, "state"))
	set("Dir::State::Lists", filepath.Join(a.dir, "lists"))
	set("Dir::State::status", "/dev/null")
	set("Dir::Cache", filepath.Join(a.dir, "cache"))
	set("Acquire::Check-Valid-Until", "false")
	set("Acquire::Languages", "none")
	set("APT::Get::List-Cleanup", "true")
	if a.arch != "" && a.arch != arch.Host() {
		set("APT::Architecture", string(a.arch))
		fmt.Fprintf(&b, "APT::Architectures { %q; %q; };\n", a.arch, arch.Host())
	}
	if os.Geteuid() == 0 {
		// Downloads land in directories the _apt user cannot write to;
		// apt would fall back with a warning on every file.
		set("APT::Sandbox::User", "root")
	}
	for _, k := range hostProxyKeys {
		if v := proxy[k]; v != "" {
			set(k, v)
		}
	}
	return b.String()
}

// hostAptProxy returns the host's proxy settings (hostProxyKeys) as apt
// itself reads them; a host without apt-config or settings gives none.
func hostAptProxy(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, k := range hostProxyKeys {
		v, err := proc.Output(proc.Command(ctx, "apt-config", "shell", "V", k))
		if err != nil {
			continue
		}
		// apt-config shell prints V='value'.
		s := strings.TrimSpace(string(v))
		s = strings.TrimPrefix(s, "V=")
		out[k] = strings.Trim(s, "'")
	}
	return out
}

// setup writes the configuration and sources list and creates the
// directories apt expects.
func (a aptConfig) setup(ctx context.Context, sources string) error {
	for _, d := range []string{"apt.conf.d", "state", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(a.confPath(), []byte(a.conf(hostAptProxy(ctx)))); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(a.dir, "sources.list"), []byte(sources))
}

// run runs an apt program with the private configuration and returns
// stdout. On failure the error carries apt's stderr lines.
func (a aptConfig) run(ctx context.Context, dir, prog string, args ...string) ([]byte, error) {
	if err := needTool(prog); err != nil {
		return nil, err
	}
	cmd := proc.Command(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "APT_CONFIG="+a.confPath())
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := proc.Run(cmd)
	if err != nil {
		return stdout.Bytes(), commandError(prog+" "+strings.Join(args, " "), err, stdout.String()+stderr.String())
	}
	// apt-get update exits 0 when some index files could not be fetched.
	if bad := failedFetchLines(stderr.String()); len(bad) > 0 {
		return stdout.Bytes(), &NetworkError{Cmd: prog + " " + strings.Join(args, " "), Lines: bad}
	}
	return stdout.Bytes(), nil
}

// update runs apt-get update on the private lists.
func (a aptConfig) update(ctx context.Context) error {
	_, err := a.run(ctx, a.dir, "apt-get", "-q", "update")
	return err
}

// failedFetchLines returns apt's "Failed to fetch" and "index files failed"
// lines: signs that the mirror could not be reached.
func failedFetchLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Failed to fetch") || strings.Contains(line, "index files failed to download") ||
			strings.Contains(line, "Could not resolve") || strings.Contains(line, "Temporary failure resolving") ||
			strings.Contains(line, "Unable to connect") || strings.Contains(line, "Could not connect") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// A pkgInfo is the part of an apt-cache show stanza kmodtest uses.
type pkgInfo struct {
	// Package is the name to download: "name:arch" where the host's
	// architecture was asked for by name.
	Package string
	Version string
	Depends []string // package names only, alternatives flattened
	Size    int64
}

// show returns every version apt knows of pkg.
func (a aptConfig) show(ctx context.Context, pkg string) ([]pkgInfo, error) {
	out, err := a.run(ctx, a.dir, "apt-cache", "show", pkg)
	if err != nil {
		return nil, err
	}
	infos := parseShow(string(out))
	if len(infos) == 0 {
		return nil, fmt.Errorf("apt-cache show %s: no such package in the configured suites", pkg)
	}
	return infos, nil
}

// parseShow parses apt-cache show output (RFC 822 stanzas).
func parseShow(text string) []pkgInfo {
	var infos []pkgInfo
	var cur *pkgInfo
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			cur = nil
			continue
		}
		if strings.HasPrefix(line, " ") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if k == "Package" {
			infos = append(infos, pkgInfo{Package: v})
			cur = &infos[len(infos)-1]
			continue
		}
		if cur == nil {
			continue
		}
		switch k {
		case "Version":
			cur.Version = v
		case "Size":
			cur.Size, _ = strconv.ParseInt(v, 10, 64)
		case "Depends", "Pre-Depends":
			cur.Depends = append(cur.Depends, depNames(v)...)
		}
	}
	return infos
}

// depNames returns the package names in a Depends field value.
func depNames(field string) []string {
	var names []string
	for _, alt := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == '|' }) {
		f := strings.Fields(alt)
		if len(f) > 0 {
			name, _, _ := strings.Cut(f[0], ":")
			names = append(names, name)
		}
	}
	return names
}

// newest returns the info with the highest Debian version.
func newest(infos []pkgInfo) pkgInfo {
	best := infos[0]
	for _, in := range infos[1:] {
		if CompareVersions(in.Version, best.Version) > 0 {
			best = in
		}
	}
	return best
}

// CompareVersions compares two Debian package versions the way dpkg does:
// it returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch int, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, _ = strconv.Atoi(e)
		v = rest
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// order is dpkg's character weight: ~ sorts before everything, even the
// end of the string; letters before other characters.
func order(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

func compareFragment(a, b string) int {
	for a != "" || b != "" {
		// Non-digit prefix.
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			var ca, cb int
			if a != "" && !isDigit(a[0]) {
				ca = order(a[0])
			}
			if b != "" && !isDigit(b[0]) {
				cb = order(b[0])
			}
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			if a != "" && !isDigit(a[0]) {
				a = a[1:]
			}
			if b != "" && !isDigit(b[0]) {
				b = b[1:]
			}
		}
		// Digit run.
		na, nb := 0, 0
		for a != "" && a[0] == '0' {
			a = a[1:]
		}
		for b != "" && b[0] == '0' {
			b = b[1:]
		}
		for na < len(a) && isDigit(a[na]) {
			na++
		}
		for nb < len(b) && isDigit(b[nb]) {
			nb++
		}
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a[:na], b[:nb]); c != 0 {
			return c
		}
		a, b = a[na:], b[nb:]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
