package check

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/modinfo"
	"github.com/kmodtest/kmodtest/project"
)

// TestProjectReport shows the table, its reasons and the Markdown form.
func TestProjectReport(t *testing.T) {
	ok := newRow(kernels.Kernel{Name: "6.1"}, "6.1.0-57-amd64", "vpoll")
	ok.States["build"], ok.States["modinfo"] = StatePass, StatePass
	bad := newRow(kernels.Kernel{Name: "6.12"}, "6.12.117+deb13-amd64", allModules)
	bad.States["build"] = StateFail
	bad.Why["build"] = []string{"$ make -C KDIR M=DIR", "vpoll.c: In function 'myinit':", "vpoll.c:112:31: error: too many arguments to function 'class_create'"}
	skip := newRow(kernels.Kernel{Name: "7.3"}, "7.3.4+deb13-amd64", allModules)
	skip.States["build"] = StateSkip
	skip.Why["build"] = []string{skippedWhy + ": BUILD_EXCLUSIVE_KERNEL_MAX=7.2 is below 7.3.4+deb13-amd64"}
	rep := &Report{Project: "vpoll 0.1", Rows: []Row{ok, bad, skip}}
	if !rep.Failed() {
		t.Error("Failed() = false with a failed build")
	}
	text := rep.String()
	for _, want := range []string{
		"kernel  release               module  build  modinfo  load  params  unload  reload  tests\n",
		"6.1     6.1.0-57-amd64        vpoll   ok     ok       -     -       -       -       -\n",
		"6.12 (all) build: FAIL\n    $ make -C KDIR M=DIR\n",
		"7.3 (all) build: skip\n    skipped: the project excludes it: BUILD_EXCLUSIVE_KERNEL_MAX=7.2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	md := rep.Markdown()
	for _, want := range []string{
		"| kernel | release | module | build | modinfo | load | params | unload | reload | tests |\n|---|---|---|---|---|---|---|---|---|---|\n",
		"| 6.12 | `6.12.117+deb13-amd64` | (all) | FAIL [1] | - |",
		"[1] 6.12, (all), build: vpoll.c:112:31: error: too many arguments to function 'class_create'",
		"[2] 7.3, (all), build: skipped: the project excludes it",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// checkFixture builds one of testdata/projects on kernel 6.1 and returns
// its report.
func checkFixture(t *testing.T, name string) (*Report, *kernels.Cache, kernels.Kernel) {
	t.Helper()
	return checkDir(t, filepath.Join("testdata", "projects", name))
}

// checkDir checks the project in dir on 6.1.
func checkDir(t *testing.T, dir string) (*Report, *kernels.Cache, kernels.Kernel) {
	t.Helper()
	testenv.NeedVMs(t)
	testenv.NeedTool(t, "make", "bash")
	p, err := project.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Kernels([]string{"6.1"})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, err := kernels.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cache := &kernels.Cache{Dir: cacheDir, Logf: t.Logf}
	rep, err := Project(t.Context(), Options{Cache: cache, Kernels: ks, Logf: t.Logf, Repo: testenv.RepoRoot(t), Artifacts: artifactsDir(t)}, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	return rep, cache, ks[0]
}

// wantCell fails t unless row's step has state and its reasons say why.
func wantCell(t *testing.T, rep *Report, step, state, why string) {
	t.Helper()
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	if row.States[step] != state || !strings.Contains(strings.Join(row.Why[step], "\n"), why) {
		t.Errorf("%s: %s with %q; want %s saying %q", step, row.States[step], row.Why[step], state, why)
	}
}

// TestFixtureGood: the reference passes build and modinfo on 6.1, and its
// module, checked against 5.10's release, is a vermagic mismatch: what a
// module built against the wrong kernel looks like.
func TestFixtureGood(t *testing.T) {
	rep, cache, k := checkFixture(t, "good")
	for _, step := range []string{"build", "modinfo", "load", "unload", "reload"} {
		wantCell(t, rep, step, StatePass, "")
	}
	wantCell(t, rep, "params", StateNotRun, "")
	f, err := cache.Fetch(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := cache.BuildProject(t.Context(), f, filepath.Join("testdata", "projects", "good"), projectSpec(nil))
	if err != nil {
		t.Fatal(err)
	}
	info, err := modinfo.Read(mb.Kos[0])
	if err != nil {
		t.Fatal(err)
	}
	r := modinfo.Check("hello", info, modinfo.Kernel{Release: "5.10.0-32-amd64"}, nil)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "is for kernel 6.1.0-57-amd64, not 5.10.0-32-amd64") {
		t.Errorf("a 6.1 module checked for 5.10: %q", r.Problems)
	}
}

// TestFixtureNoLicense: modpost's complaint is shown. 6.1's modpost makes
// a missing license an error (5.10's only warned, and then modinfo's
// license check fails the module).
func TestFixtureNoLicense(t *testing.T) {
	rep, _, _ := checkFixture(t, "no-license")
	wantCell(t, rep, "build", StateFail, "ERROR: modpost: missing MODULE_LICENSE() in nolicense.o")
}

// TestFixtureMissingKo: dkms.conf names a module the build never makes.
func TestFixtureMissingKo(t *testing.T) {
	rep, _, _ := checkFixture(t, "missing-ko")
	wantCell(t, rep, "build", StateFail, "the build made no ghost.ko")
}

// TestFixtureBadSyntax: the project does not load, and the error names
// the file, the line and the fix. No kernel is needed.
func TestFixtureBadSyntax(t *testing.T) {
	_, err := project.Load(t.Context(), filepath.Join("testdata", "projects", "bad-syntax"))
	if err == nil {
		t.Fatal("loaded a dkms.conf with a syntax error")
	}
	for _, want := range []string{"bad-syntax/dkms.conf", "line 6", "fix the shell syntax"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestDebianDKMS downloads three of Debian 12's *-dkms packages (modules
// nobody here wrote) and checks them on 6.1, their own release's kernel,
// where all build, pass modinfo, load, unload and reload in a guest;
// v4l2loopback depends on the kernel's videodev (and its dependencies),
// and its load makes /dev/video0, which answers VIDIOC_QUERYCAP with
// its driver's name: a test its copy gets here (a kmodtest.json next to
// its dkms.conf, and testdata/v4l2querycap, a Go program).
func TestDebianDKMS(t *testing.T) {
	testenv.NeedVMs(t)
	testenv.NeedTool(t, "apt-get", "dpkg-deb", "make", "bash")
	tmp := t.TempDir()
	pkgs := map[string]string{"vpoll-dkms": "vpoll", "v4l2loopback-dkms": "v4l2loopback", "acpi-call-dkms": "acpi_call"}
	args := []string{"download"}
	for p := range pkgs {
		args = append(args, p)
	}
	cmd := exec.CommandContext(t.Context(), "apt-get", args...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("apt-get download (this host's apt must know bookworm's packages): %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	for _, deb := range debs {
		if out, err := exec.CommandContext(t.Context(), "dpkg-deb", "-x", deb, filepath.Join(tmp, "x")).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
		}
	}
	confs, _ := filepath.Glob(filepath.Join(tmp, "x", "usr", "src", "*", project.DKMSFile))
	if len(confs) != len(pkgs) {
		t.Fatalf("found %d dkms.conf files, want %d", len(confs), len(pkgs))
	}
	dir, err := kernels.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Kernels([]string{"6.1"})
	if err != nil {
		t.Fatal(err)
	}
	check := Options{Cache: &kernels.Cache{Dir: dir, Logf: t.Logf}, Kernels: ks, Logf: t.Logf, Repo: testenv.RepoRoot(t), Artifacts: artifactsDir(t)}
	for _, conf := range confs {
		if strings.Contains(conf, "v4l2loopback") {
			addQuerycapTest(t, filepath.Dir(conf), "v4l2 loopback")
		}
		p, err := project.Load(t.Context(), filepath.Dir(conf))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Project(t.Context(), check, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", rep)
		if rep.Failed() || len(rep.Rows) == 0 || isTestStep(rep.Rows[0].Module) {
			t.Errorf("%s on 6.1: want one module and no failure:\n%s", p.Name, rep)
			continue
		}
		tests := rep.Rows[1:] // the rows of the project's tests
		if p.Name == "v4l2loopback" {
			if len(tests) != 1 || tests[0].Module != "test/querycap" || tests[0].States["tests"] != StatePass {
				t.Errorf("v4l2loopback: want one test row, test/querycap ok:\n%s", rep)
			}
		} else if len(tests) != 0 {
			t.Errorf("%s: %d rows, want one module's", p.Name, len(rep.Rows))
		}
		for _, step := range []string{"build", "modinfo", "load", "unload", "reload"} {
			if got := rep.Rows[0].States[step]; got != StatePass {
				t.Errorf("%s on 6.1: %s is %s, want ok", p.Name, step, got)
			}
		}
		notes := strings.Join(rep.Rows[0].Notes, "\n")
		if p.Name == "v4l2loopback" && !strings.Contains(notes, "load: new device nodes: /dev/video0") {
			t.Errorf("v4l2loopback's load made no /dev/video0: notes %q", notes)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "x")); err != nil {
		t.Fatal(err)
	}
}

// TestFixtureWarns: a warning fails the build because the project says
// so (kmodtest.json warnings_fail), and the warning is shown.
func TestFixtureWarns(t *testing.T) {
	rep, _, _ := checkFixture(t, "warns")
	wantCell(t, rep, "build", StateFail, "warns.c:7:34: warning: unused variable")
	if !strings.Contains(rep.Rows[0].Why["build"][0], "warnings_fail") {
		t.Errorf("the reason does not name the project's choice: %q", rep.Rows[0].Why["build"])
	}
}

// TestFixtureExcluded: a kernel outside BUILD_EXCLUSIVE_* is skipped, not
// failed, and nothing is built for it.
func TestFixtureExcluded(t *testing.T) {
	rep, _, _ := checkFixture(t, "excluded")
	wantCell(t, rep, "build", StateSkip, "skipped: the project excludes it: BUILD_EXCLUSIVE_KERNEL_MAX=6.0 is below 6.1.0-57-amd64")
	if rep.Failed() {
		t.Error("a skipped kernel counts as failed")
	}
}

// artifactsDir is where the fixtures' guest runs keep their logs:
// KMODTEST_CHECK_ARTIFACTS when set (to look at them afterwards), else a
// directory the test removes.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("KMODTEST_CHECK_ARTIFACTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// TestFixtureWarnExit: a WARN in the exit function fails the unload step,
// which quotes the kernel's WARNING; the load before it passed.
func TestFixtureWarnExit(t *testing.T) {
	rep, _, _ := checkFixture(t, "warn-exit")
	wantCell(t, rep, "load", StatePass, "")
	wantCell(t, rep, "unload", StateFail, "the kernel reported an error during the step: ")
	wantCell(t, rep, "unload", StateFail, "warnexit: leaving something behind")
}

// TestFixtureMissingDep: a module needing a symbol the kernel does not
// export fails its load step with the kernel's "Unknown symbol" line,
// and the steps after it say why they did not run.
func TestFixtureMissingDep(t *testing.T) {
	rep, _, _ := checkFixture(t, "missing-dep")
	wantCell(t, rep, "load", StateFail, "Unknown symbol kmodtest_absent_provider")
	wantCell(t, rep, "unload", StateSkip, "missingdep is not loaded: its load step failed")
}

// TestFixtureRefuses: a parameter set the module refuses passes when the
// project marks it refused, and fails when it does not.
func TestFixtureRefuses(t *testing.T) {
	rep, _, _ := checkFixture(t, "refuses")
	wantCell(t, rep, "params", StatePass, "")
	rep, _, _ = checkFixture(t, "refuses-unmarked")
	wantCell(t, rep, "params", StateFail, `set "too-many": insmod`)
	wantCell(t, rep, "params", StateFail, "devices=1000: want 1 to 8")
}

// TestFixtureNeedsVideodev: a module using the kernel's videodev loads
// after mc and videodev, loaded from the kernel's own package in that
// order.
func TestFixtureNeedsVideodev(t *testing.T) {
	rep, _, _ := checkFixture(t, "needs-videodev")
	for _, step := range []string{"load", "unload", "reload"} {
		wantCell(t, rep, step, StatePass, "")
	}
	if notes := strings.Join(rep.Rows[0].Notes, "\n"); !strings.Contains(notes, "deps: loaded mc, videodev") {
		t.Errorf("notes do not name the kernel modules loaded: %q", notes)
	}
}

// TestFixtureProprietary: a module whose license is not GPL-compatible
// taints the kernel with P on load; that is expected, noted and not a
// failure.
func TestFixtureProprietary(t *testing.T) {
	rep, _, _ := checkFixture(t, "proprietary")
	for _, step := range []string{"modinfo", "load", "unload", "reload"} {
		wantCell(t, rep, step, StatePass, "")
	}
	if notes := strings.Join(rep.Rows[0].Notes, "\n"); !strings.Contains(notes, `P taint (proprietary module) is expected for blob ("Proprietary")`) {
		t.Errorf("notes do not say P is expected: %q", notes)
	}
}

// TestFixturePair: of two modules, pair_consumer, using pair_provider's symbol,
// loads after it (from depends, whatever the names' order), each is
// loaded, unloaded and reloaded with the ones before it loaded, and the
// provider, left loaded for the consumer, is unloaded at the end.
func TestFixturePair(t *testing.T) {
	rep, _, _ := checkFixture(t, "pair")
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rep.Rows))
	}
	if rep.Rows[0].Module != "pair_consumer" {
		t.Fatalf("rows %s, %s: want pair_consumer's first (the build's order, by name)", rep.Rows[0].Module, rep.Rows[1].Module)
	}
	for _, row := range rep.Rows {
		for _, step := range []string{"build", "modinfo", "load", "unload", "reload"} {
			if row.States[step] != StatePass {
				t.Errorf("%s %s: %s %q", row.Module, step, row.States[step], row.Why[step])
			}
		}
	}
}

// TestNetlinkGreetingsAsProject: kmod/ is a module project too (its
// kmodtest.json): the generic steps load it, try its parameter sets (an
// out-of-range and a taken protocol must be refused) and unload it.
func TestNetlinkGreetingsAsProject(t *testing.T) {
	rep, _, _ := checkDir(t, filepath.Join(testenv.RepoRoot(t), "kmod"))
	for _, step := range []string{"build", "modinfo", "load", "params", "unload", "reload"} {
		wantCell(t, rep, step, StatePass, "")
	}
}

// TestNetlinkGreetingsFixtureAsProject: a broken NetlinkGreetings that
// ignores its protocol parameter (kmod/fixtures/ignore-protocol-param)
// loads with a taken protocol: the generic params step catches it
// without knowing what the module does.
func TestNetlinkGreetingsFixtureAsProject(t *testing.T) {
	testenv.NeedVMs(t)
	testenv.NeedTool(t, "patch")
	repo := testenv.RepoRoot(t)
	dir := filepath.Join(t.TempDir(), "kmod")
	if out, err := exec.Command("cp", "-r", filepath.Join(repo, "kmod"), dir).CombinedOutput(); err != nil {
		t.Fatalf("copy kmod: %v: %s", err, out)
	}
	patch := filepath.Join(repo, "kmod", "fixtures", "ignore-protocol-param.patch")
	if out, err := exec.Command("patch", "-p1", "-d", dir, "-i", patch).CombinedOutput(); err != nil {
		t.Fatalf("patch: %v: %s", err, out)
	}
	rep, _, _ := checkDir(t, dir)
	wantCell(t, rep, "params", StateFail, `set "taken"`)
}

// addQuerycapTest adds to the v4l2loopback project in dir (a temporary
// copy) the Go program testdata/v4l2querycap and a kmodtest.json
// running it on /dev/video0, the device the module's load makes, wanting
// driver as the driver's name.
func addQuerycapTest(t *testing.T, dir, driver string) {
	t.Helper()
	src := filepath.Join("testdata", "v4l2querycap")
	dst := filepath.Join(dir, "querycap")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"tests": [{"name": "querycap", "go": "./querycap", "run": ["querycap", "/dev/video0", %q]}]}`, driver)
	if err := os.WriteFile(filepath.Join(dir, project.ManifestFile), []byte(manifest+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
