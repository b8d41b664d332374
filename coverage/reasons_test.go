package coverage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadReasons(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	os.WriteFile(good, []byte("# comment\n\nm.c\t  return -EMSGSIZE;  \tcannot fail\n"), 0o644)
	got, err := LoadReasons(good)
	if err != nil || len(got) != 1 || got[0] != (Reason{File: "m.c", Text: "return -EMSGSIZE;", Why: "cannot fail"}) {
		t.Fatalf("LoadReasons = %+v, %v", got, err)
	}
	if got, err := LoadReasons(filepath.Join(dir, "missing.txt")); got != nil || err != nil {
		t.Errorf("missing file: %+v, %v; want no reasons, no error", got, err)
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("m.c return -EMSGSIZE; no tabs\n"), 0o644)
	if _, err := LoadReasons(bad); err == nil || !strings.Contains(err.Error(), "bad.txt:1: want FILE<TAB>LINE TEXT<TAB>WHY") {
		t.Errorf("line without tabs: got %v, want an error naming the file, the line and the format", err)
	}
}

func TestExplain(t *testing.T) {
	src := filepath.Join(t.TempDir(), "m.c")
	os.WriteFile(src, []byte("int f(void)\n{\n\tif (x)\n\t\treturn -EMSGSIZE;\n\treturn 0;\n}\n"), 0o644)
	res := &Result{Files: []File{{Name: "m.c", Source: src, Lines: []Line{{Number: 3, Count: 5}, {Number: 4}, {Number: 5}}}}}
	reason := Reason{File: "m.c", Text: "return -EMSGSIZE;", Why: "cannot fail"}

	ex := res.Explain([]Reason{reason}, "reasons.txt")
	if len(ex.Gaps()) != 1 || !strings.Contains(ex.Gaps()[0], "m.c:5: return 0; ran in no step") {
		t.Errorf("line 5 has no reason: gaps %q", ex.Gaps())
	}
	if len(ex.Lines) != 2 || ex.Lines[0] != "m.c:4: return -EMSGSIZE;\t(unreachable: cannot fail)" {
		t.Errorf("lines %q", ex.Lines)
	}

	res.Files[0].Lines[1].Count = 1 // line 4 runs now: its reason is stale
	res.Files[0].Lines[2].Count = 1
	ex = res.Explain([]Reason{reason}, "reasons.txt")
	if len(ex.Gaps()) != 1 || !strings.Contains(ex.Gaps()[0], `reasons.txt gives a reason for m.c line "return -EMSGSIZE;", but no such line is left unrun`) {
		t.Errorf("stale reason: gaps %q", ex.Gaps())
	}
}
