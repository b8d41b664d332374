package debian

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
	"github.com/kmodtest/kmodtest/internal/atomicfile"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// Keyring is Debian's archive keyring: it verifies the Release files.
const Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

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
			f = append([]string{f[0], "[signed-by=" + Keyring + "]"}, f[1:]...)
		}
		b.WriteString(strings.Join(f, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// An Apt is a private apt state directory: its own configuration
// file, sources list, package lists and download cache, nothing from the
// host's apt state.
type Apt struct {
	Dir string
	// Arch is the architecture whose packages apt resolves ("" is the
	// host's). For a foreign one the host's is added too, so that
	// "name:HOSTARCH" finds the host tools (linux-kbuild) of the release.
	Arch arch.Arch
}

// confPath is the private configuration file, passed through APT_CONFIG.
func (a Apt) confPath() string { return filepath.Join(a.Dir, "apt.conf") }

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
func (a Apt) conf(proxy map[string]string) string {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s %s;\n", k, strconv.Quote(v)) }
	set("Dir::Etc::Main", "/dev/null")
	set("Dir::Etc::Parts", filepath.Join(a.Dir, "apt.conf.d"))
	set("Dir::Etc::SourceList", filepath.Join(a.Dir, "sources.list"))
	set("Dir::Etc::SourceParts", "/dev/null")
	set("Dir::Etc::Preferences", "/dev/null")
	set("Dir::Etc::PreferencesParts", "/dev/null")
	set("Dir::State", filepath.Join(a.Dir, "state"))
	set("Dir::State::Lists", filepath.Join(a.Dir, "lists"))
	set("Dir::State::status", "/dev/null")
	set("Dir::Cache", filepath.Join(a.Dir, "cache"))
	set("Acquire::Check-Valid-Until", "false")
	set("Acquire::Languages", "none")
	set("APT::Get::List-Cleanup", "true")
	if a.Arch != "" && a.Arch != arch.Host() {
		set("APT::Architecture", string(a.Arch))
		fmt.Fprintf(&b, "APT::Architectures { %q; %q; };\n", a.Arch, arch.Host())
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

// Setup writes the configuration and sources list and creates the
// directories apt expects.
func (a Apt) Setup(ctx context.Context, sources string) error {
	for _, d := range []string{"apt.conf.d", "state", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(a.confPath(), []byte(a.conf(hostAptProxy(ctx))), 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(a.Dir, "sources.list"), []byte(sources), 0o644)
}

// run runs an apt program with the private configuration and returns
// stdout. On failure the error carries apt's stderr lines.
func (a Apt) run(ctx context.Context, dir, prog string, args ...string) ([]byte, error) {
	if err := proc.NeedTool(prog); err != nil {
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
		return stdout.Bytes(), CommandFailed(prog+" "+strings.Join(args, " "), err, stdout.String()+stderr.String())
	}
	// apt-get update exits 0 when some index files could not be fetched.
	if bad := failedFetchLines(stderr.String()); len(bad) > 0 {
		return stdout.Bytes(), &NetworkError{Cmd: prog + " " + strings.Join(args, " "), Lines: bad}
	}
	return stdout.Bytes(), nil
}

// Update runs apt-get update on the private lists.
func (a Apt) Update(ctx context.Context) error {
	_, err := a.run(ctx, a.Dir, "apt-get", "-q", "update")
	return err
}

// Download fetches the packages ("name=version") into dir with
// apt-get download.
func (a Apt) Download(ctx context.Context, dir string, pkgs ...string) error {
	_, err := a.run(ctx, dir, "apt-get", append([]string{"-q", "download"}, pkgs...)...)
	return err
}

// A Package is the part of an apt-cache show stanza kmodtest uses.
type Package struct {
	// Name is the name to download: "name:arch" where the host's
	// architecture was asked for by name.
	Name    string
	Version string
	Depends []string // package names only, alternatives flattened
	Size    int64
}

// Show returns every version apt knows of pkg.
func (a Apt) Show(ctx context.Context, pkg string) ([]Package, error) {
	out, err := a.run(ctx, a.Dir, "apt-cache", "show", pkg)
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
func parseShow(text string) []Package {
	var infos []Package
	var cur *Package
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
			infos = append(infos, Package{Name: v})
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
