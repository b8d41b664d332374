package shell

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/kernels"
)

func TestPickTarget(t *testing.T) {
	k73 := kernels.Kernel{Name: "7.3", Profiles: []string{"default", "hardened"}}
	both := []harness.Target{{Kernel: k73, Profile: "default"}, {Kernel: k73, Profile: "hardened"}}
	for _, tc := range []struct {
		name    string
		targets []harness.Target
		profile string
		want    string // target name, or an error fragment
	}{
		{"first profile", both, "", "7.3"},
		{"named profile", both, "hardened", "7.3-hardened"},
		{"unknown profile", both, "fast", `-profile "fast"`},
		{"two kernels", append(both, harness.Target{Kernel: kernels.Kernel{Name: "6.1"}}), "", "holds 2 (7.3,6.1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := pickTarget(tc.targets, tc.profile)
			got := tg.Name()
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("want %q, got %q", tc.want, got)
			}
		})
	}
}
