package harness

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/contract"
)

func parseOptions(t *testing.T, env map[string]string, args ...string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Register(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.Validate()
}

func TestOptionsFlagsAndEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Options
	}{
		{name: "defaults"},
		{
			name: "flags",
			args: []string{"-kernels", "6.1,7.2", "-steps", "full", "-accel", "tcg", "-fixtures", "-artifacts-dir", "/tmp/a"},
			want: Options{Kernels: "6.1,7.2", Steps: "full", Accel: "tcg", Fixtures: true, ArtifactsDir: "/tmp/a"},
		},
		{
			name: "env is the default",
			env:  map[string]string{"KMODTEST_STEPS": "full", "KMODTEST_FIXTURES": "1", "KMODTEST_ARTIFACTS": "/x", "KMODTEST_KERNEL": "/k", "KMODTEST_KDIR": "/d"},
			want: Options{Steps: "full", Fixtures: true, ArtifactsDir: "/x", Kernel: "/k", KDIR: "/d"},
		},
		{
			name: "a flag beats its variable",
			env:  map[string]string{"KMODTEST_STEPS": "full", "KMODTEST_KERNELS": "5.10"},
			args: []string{"-steps", "core", "-kernels", "6.1"},
			want: Options{Steps: "core", Kernels: "6.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("unexpected options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "steps", args: []string{"-steps", "bogus"}, want: `-steps "bogus": want core or full`},
		{name: "steps from env", env: map[string]string{"KMODTEST_STEPS": "ful"}, want: `-steps "ful"`},
		{name: "accel", args: []string{"-accel", "hvf"}, want: `-accel "hvf": want kvm or tcg`},
		{name: "kernel without kdir", args: []string{"-kernel", "/boot/vmlinuz"}, want: "needs both -kernel"},
		{name: "kdir without kernel", args: []string{"-kdir", "/src/linux"}, want: "needs both -kernel"},
		{name: "kernel and kernels", args: []string{"-kernel", "/k", "-kdir", "/d", "-kernels", "6.1"}, want: "give one of them"},
		{name: "fixtures is a switch", args: []string{"-fixtures=maybe"}, want: "invalid boolean value"},
		{name: "old artifacts flag", args: []string{"-artifacts", "/tmp/a"}, want: "flag provided but not defined: -artifacts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStepNames(t *testing.T) {
	for steps, want := range map[string][]string{"": contract.CoreSteps, "core": contract.CoreSteps, "full": contract.FullSteps} {
		got, err := Options{Steps: steps}.StepNames()
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("Options{Steps: %q}.StepNames() = %v, %v; want %v", steps, got, err, want)
		}
	}
}

// TestSettingsCoverOptions makes sure every field of Options has a flag:
// a field without one could not be set, nor repeated by a rerun line.
func TestSettingsCoverOptions(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.Register(fs, func(string) string { return "" })
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if want := 11; n != want || len(Settings) != want {
		t.Fatalf("%d flags from %d settings, want %d: update Settings, vmtests/doc.go and this test together", n, len(Settings), want)
	}
}
