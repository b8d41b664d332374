package proc

import (
	"errors"
	"strings"
	"testing"
)

func TestNeedTool(t *testing.T) {
	err := NeedTool("kmodtest-no-such-tool")
	var mte *MissingToolError
	if !errors.As(err, &mte) || !strings.Contains(err.Error(), "make setup") {
		t.Fatalf("want *MissingToolError mentioning make setup, got %v", err)
	}
	if err := NeedTool("pahole"); err != nil && !strings.Contains(err.Error(), "dwarves") {
		t.Fatalf("pahole must name dwarves: %v", err)
	}
}
