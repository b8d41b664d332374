package coverage

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// A Reason says why no test can run a line of the module. Lines are named
// by their text, not their number, so that an edit elsewhere in the file
// does not make the reason stale.
type Reason struct {
	File string // the source file, as in Result.Files
	Text string // the line, without leading and trailing blanks
	Why  string
}

// LoadReasons reads a reasons file: one "FILE<TAB>LINE TEXT<TAB>WHY" per
// line, blank lines and lines starting with # ignored. A missing file
// holds no reasons.
func LoadReasons(path string) ([]Reason, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coverage reasons: %w", err)
	}
	defer f.Close()
	var out []Reason
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 || fields[0] == "" || strings.TrimSpace(fields[1]) == "" || strings.TrimSpace(fields[2]) == "" {
			return nil, fmt.Errorf("%s:%d: want FILE<TAB>LINE TEXT<TAB>WHY, got %q", path, n, line)
		}
		out = append(out, Reason{File: fields[0], Text: strings.TrimSpace(fields[1]), Why: strings.TrimSpace(fields[2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("coverage reasons: %w", err)
	}
	return out, nil
}

// Explained is the lines that never ran, each with its reason when one
// is given, and the gaps in the explanation.
type Explained struct {
	Lines []string
	// Unexplained are the lines that never ran and have no reason;
	// Stale the reasons that name no line left unrun (the line runs
	// now, or is gone).
	Unexplained, Stale []string
}

// Gaps is every unexplained line and every stale reason.
func (e Explained) Gaps() []string { return append(slices.Clip(e.Unexplained), e.Stale...) }

// Explain matches the lines that never ran against reasons.
func (r *Result) Explain(reasons []Reason, reasonsFile string) Explained {
	var out Explained
	used := make([]bool, len(reasons))
	for _, l := range r.unrun() {
		i := -1
		for j, re := range reasons {
			if re.File == l.file && re.Text == l.text {
				i = j
				break
			}
		}
		if i < 0 {
			out.Lines = append(out.Lines, l.String())
			out.Unexplained = append(out.Unexplained, fmt.Sprintf("%s ran in no step: add a step that runs it, or give in %s the reason no test can reach it", l, reasonsFile))
			continue
		}
		used[i] = true
		out.Lines = append(out.Lines, l.String()+"\t(unreachable: "+reasons[i].Why+")")
	}
	for i, re := range reasons {
		if !used[i] {
			out.Stale = append(out.Stale, fmt.Sprintf("%s gives a reason for %s line %q, but no such line is left unrun: remove it", reasonsFile, re.File, re.Text))
		}
	}
	return out
}
