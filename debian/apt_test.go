package debian

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/testenv"
)

func TestSourcesList(t *testing.T) {
	m := Mirrors{Debian: "http://mirror.example/debian", Security: "http://mirror.example/debian-security"}
	got := SourcesList([]string{
		"deb {mirror} bookworm main",
		"deb {security} bookworm-security main",
		"deb [trusted=yes] http://local/debian sid main",
	}, m)
	want := "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main\n" +
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security bookworm-security main\n" +
		"deb [trusted=yes] http://local/debian sid main\n"
	if got != want {
		t.Fatalf("unexpected sources:\n- want\n%s- got\n%s", want, got)
	}
}

func TestParseShow(t *testing.T) {
	out := `Package: linux-image-amd64
Version: 6.1.192-2
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Size: 1500
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel.

Package: linux-headers-6.12.117+deb13-amd64
Version: 6.12.117-1
Depends: linux-base (>= 4.12~), linux-headers-6.12.117+deb13-common (= 6.12.117-1), linux-image-6.12.117+deb13-amd64 (= 6.12.117-1) | linux-image-6.12.117+deb13-amd64-unsigned (= 6.12.117-1), gcc-14:amd64
`
	got := parseShow(out)
	if len(got) != 2 {
		t.Fatalf("want 2 stanzas, got %d", len(got))
	}
	if got[0].Version != "6.1.192-2" || got[0].Size != 1500 || !slices.Equal(got[0].Depends, []string{"linux-image-6.1.0-56-amd64"}) {
		t.Errorf("unexpected first stanza %+v", got[0])
	}
	wantDeps := []string{"linux-base", "linux-headers-6.12.117+deb13-common", "linux-image-6.12.117+deb13-amd64", "linux-image-6.12.117+deb13-amd64-unsigned", "gcc-14"}
	if !slices.Equal(got[1].Depends, wantDeps) {
		t.Errorf("unexpected depends:\n- want %v\n- got  %v", wantDeps, got[1].Depends)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"6.1.192-2", "6.1.176-1", 1},
		{"7.3.4-1~bpo13+1", "7.3.4-1", -1},
		{"1.0~rc1", "1.0", -1},
		{"1:1.0", "2.0", 1},
		{"1.0a", "1.0", 1},
		{"1.0-1", "1.0-1", 0},
		{"1.10", "1.9", 1},
		{"1.0+b1", "1.0", 1},
		{"01.0", "1.0", 0},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	infos := []Package{{Version: "6.1.176-1"}, {Version: "6.1.192-2"}, {Version: "6.1.180-1"}}
	if got := Newest(infos).Version; got != "6.1.192-2" {
		t.Errorf("newest = %s", got)
	}
}

func TestFailedFetchLines(t *testing.T) {
	stderr := "W: Failed to fetch http://deb.debian.org/debian/dists/sid/InRelease  Temporary failure resolving 'deb.debian.org'\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n"
	if got := failedFetchLines(stderr); len(got) != 2 {
		t.Fatalf("want 2 lines, got %q", got)
	}
	err := CommandFailed("apt-get update", os.ErrInvalid, stderr)
	var ne *NetworkError
	if !errors.As(err, &ne) {
		t.Fatalf("want *NetworkError, got %T", err)
	}
	if want := "is the Debian mirror reachable? set KMODTEST_MIRROR"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
}

// TestAptConfigKeepsHostHooksOut shows that apt run with the private
// configuration reads none of the host's apt.conf.d: the host's
// Post-Invoke hooks (docker-clean, appstream, packagekit on this kind of
// machine) must not appear in apt-config dump, while a setting planted in
// the private parts directory must.
func TestAptConfigKeepsHostHooksOut(t *testing.T) {
	testenv.NeedTool(t, "apt-config")
	hostDump, err := exec.Command("apt-config", "dump").Output()
	if err != nil {
		t.Fatalf("apt-config dump: %v", err)
	}
	a := Apt{Dir: t.TempDir()}
	if err := a.Setup(t.Context(), "deb http://deb.debian.org/debian bookworm main\n"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(a.Dir, "apt.conf.d", "50planted"), []byte("Kmodtest::Planted \"yes\";\n"), 0o644)
	out, err := a.run(t.Context(), a.Dir, "apt-config", "dump")
	if err != nil {
		t.Fatal(err)
	}
	dump := string(out)
	if !strings.Contains(dump, `Kmodtest::Planted "yes";`) {
		t.Errorf("the private apt.conf.d was not read:\n%s", dump)
	}
	for _, line := range strings.Split(string(hostDump), "\n") {
		if strings.Contains(line, "Post-Invoke") && strings.Contains(dump, line) {
			t.Errorf("host hook reached the private configuration: %s", line)
		}
	}
	for _, want := range []string{
		`Dir::Etc::parts "` + filepath.Join(a.Dir, "apt.conf.d") + `";`,
		`Dir::State::lists "` + filepath.Join(a.Dir, "lists") + `";`,
		`Acquire::Check-Valid-Until "false";`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("private configuration lacks %s", want)
		}
	}
	if !strings.Contains(string(hostDump), "Post-Invoke") {
		t.Logf("this host's apt has no Post-Invoke hooks: the check above had nothing to keep out")
	}
}

// TestAptConfigForeignArch checks that apt, asked for another
// architecture, resolves that one and still knows the host's (for the
// kbuild tools).
func TestAptConfigForeignArch(t *testing.T) {
	testenv.NeedTool(t, "apt-config")
	foreign := map[arch.Arch]arch.Arch{arch.AMD64: arch.ARM64, arch.ARM64: arch.AMD64}[arch.Host()]
	a := Apt{Dir: t.TempDir(), Arch: foreign}
	if err := a.Setup(t.Context(), "deb http://deb.debian.org/debian bookworm main\n"); err != nil {
		t.Fatal(err)
	}
	out, err := a.run(t.Context(), a.Dir, "apt-config", "dump")
	if err != nil {
		t.Fatal(err)
	}
	dump := string(out)
	for _, want := range []string{
		`APT::Architecture "` + string(foreign) + `";`,
		`APT::Architectures:: "` + string(foreign) + `";`,
		`APT::Architectures:: "` + string(arch.Host()) + `";`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("apt configuration lacks %s:\n%s", want, dump)
		}
	}
}
