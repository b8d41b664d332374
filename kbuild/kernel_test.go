package kbuild

import (
	"slices"
	"testing"
)

func TestMissingConfig(t *testing.T) {
	frag := "# comment\nCONFIG_KASAN=y\nCONFIG_LOCALVERSION=\"-x\"\n# CONFIG_SLUB_TINY is not set\nCONFIG_GONE=y\n"
	cfg := "CONFIG_KASAN=y\nCONFIG_LOCALVERSION=\"-x\"\nCONFIG_SLUB_TINY=y\n# CONFIG_GONE is not set\n"
	got := missingConfig(frag, cfg)
	want := []string{"# CONFIG_SLUB_TINY is not set", "CONFIG_GONE=y"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("missingConfig: want %q, got %q", want, got)
	}
}
