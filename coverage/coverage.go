// Package coverage turns the gcov data a guest handed back (.gcda files
// of a module built with GCOV_PROFILE=y) into line and branch coverage of
// the module's own sources: a summary line, the lines never run, an lcov
// tracefile and, with genhtml (Debian's lcov package), an HTML page.
//
// It runs on the host, with the gcov of the compiler that built the
// module: a .gcda only reads back with its own compiler's gcov.
package coverage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// A Line is one source line with code.
type Line struct {
	Number int
	Count  int64
	// Branches holds the count of each branch outcome on the line.
	Branches []int64
}

// A File is the coverage of one source file of the module.
type File struct {
	// Name is the file name relative to the module's directory.
	Name string
	// Source is the path of the source the lines refer to (the module
	// as built, patch included).
	Source string
	Lines  []Line
}

// Result is the coverage of a module's sources.
type Result struct {
	Files []File
	// Tracefile is the lcov .info file, HTML the genhtml index (or ""
	// when genhtml is not installed; HTMLNote then says so).
	Tracefile, HTML, HTMLNote string
}

// Totals returns lines with code, lines run, branch outcomes and branch
// outcomes taken over every file.
func (r *Result) Totals() (lines, hit, branches, taken int) {
	for _, f := range r.Files {
		for _, l := range f.Lines {
			lines++
			if l.Count > 0 {
				hit++
			}
			branches += len(l.Branches)
			for _, c := range l.Branches {
				if c > 0 {
					taken++
				}
			}
		}
	}
	return
}

// Summary is the one-line report: "lines 95/100 (95.0%), branches ...".
func (r *Result) Summary() string {
	lines, hit, branches, taken := r.Totals()
	return fmt.Sprintf("lines %d/%d (%s), branches %d/%d (%s)", hit, lines, percent(hit, lines), taken, branches, percent(taken, branches))
}

func percent(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// Unrun returns "file:line: source text" for every line with code that
// never ran.
func (r *Result) Unrun() []string {
	var out []string
	for _, l := range r.unrun() {
		out = append(out, l.String())
	}
	return out
}

// An unrunLine is a line with code that never ran.
type unrunLine struct {
	file   string
	number int
	text   string // without leading and trailing blanks
}

func (l unrunLine) String() string { return fmt.Sprintf("%s:%d: %s", l.file, l.number, l.text) }

func (r *Result) unrun() []unrunLine {
	var out []unrunLine
	for _, f := range r.Files {
		text := sourceLines(f.Source)
		for _, l := range f.Lines {
			if l.Count > 0 {
				continue
			}
			src := ""
			if l.Number-1 < len(text) {
				src = strings.TrimSpace(text[l.Number-1])
			}
			out = append(out, unrunLine{file: f.Name, number: l.Number, text: src})
		}
	}
	return out
}

func sourceLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(string(data), "\n")
}

// GcovTool returns the gcov that reads what cc wrote: gcov-12 for gcc-12,
// x86_64-linux-gnu-gcov-14 for x86_64-linux-gnu-gcc-14, gcov for gcc.
func GcovTool(cc string) string {
	dir, base := filepath.Split(cc)
	if i := strings.LastIndex(base, "gcc"); i >= 0 {
		return dir + base[:i] + "gcov" + base[i+len("gcc"):]
	}
	return "gcov"
}

// Generate computes the coverage of the module whose build kept its
// .gcno files and sources in notesDir, from the guest's .gcda files (keyed
// by their guest path; only the base name matters), and writes the
// tracefile and the HTML page into outDir.
func Generate(ctx context.Context, gcov, notesDir string, gcda map[string][]byte, outDir string) (*Result, error) {
	g, err := newGcovRunner(gcov, notesDir)
	if err != nil {
		return nil, err
	}
	defer g.close()
	if len(gcda) == 0 {
		return nil, fmt.Errorf("coverage: the guest sent no .gcda file")
	}
	res := &Result{}
	if res.Files, err = g.run(ctx, gcda); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	res.Tracefile = filepath.Join(outDir, "coverage.info")
	if err := os.WriteFile(res.Tracefile, []byte(res.lcov()), 0o644); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	res.HTML, res.HTMLNote = genhtml(ctx, filepath.Join(outDir, "html"), res.Tracefile)
	return res, nil
}

// genhtml writes the HTML page of tracefile into dir, with extra
// arguments, and returns its index, or "" and a note saying why there
// is none.
func genhtml(ctx context.Context, dir, tracefile string, extra ...string) (index, note string) {
	if _, err := exec.LookPath("genhtml"); err != nil {
		return "", "no HTML page: genhtml not found (apt-get install lcov)"
	}
	args := append([]string{"--branch-coverage", "--quiet", "--output-directory", dir}, extra...)
	cmd := exec.CommandContext(ctx, "genhtml", append(args, tracefile)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("genhtml failed: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return filepath.Join(dir, "index.html"), ""
}

// A gcovRunner runs gcov on .gcda data beside the module's .gcno files,
// in a scratch directory of its own.
type gcovRunner struct {
	gcov, notesDir, work string
}

func newGcovRunner(gcov, notesDir string) (*gcovRunner, error) {
	if _, err := exec.LookPath(gcov); err != nil {
		return nil, fmt.Errorf("coverage: %s not found: install the compiler package that provides it (apt-get install %s)", gcov, strings.Replace(gcov, "gcov", "gcc", 1))
	}
	notes, _ := filepath.Glob(filepath.Join(notesDir, "*.gcno"))
	if len(notes) == 0 {
		return nil, fmt.Errorf("coverage: no .gcno files in %s: the module was not built with GCOV_PROFILE=y", notesDir)
	}
	work, err := os.MkdirTemp("", "kmodtest-gcov-")
	if err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	g := &gcovRunner{gcov: gcov, notesDir: notesDir, work: work}
	for _, n := range notes {
		data, err := os.ReadFile(n)
		if err == nil {
			err = os.WriteFile(filepath.Join(work, filepath.Base(n)), data, 0o644)
		}
		if err != nil {
			g.close()
			return nil, fmt.Errorf("coverage: %w", err)
		}
	}
	return g, nil
}

func (g *gcovRunner) close() { os.RemoveAll(g.work) }

// run returns the coverage of the module's sources that the .gcda files
// in gcda (keyed by guest path; only the base name matters) record.
func (g *gcovRunner) run(ctx context.Context, gcda map[string][]byte) ([]File, error) {
	var dataFiles []string
	for guestPath, data := range gcda {
		name := filepath.Base(guestPath)
		if err := os.WriteFile(filepath.Join(g.work, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("coverage: %w", err)
		}
		dataFiles = append(dataFiles, name)
	}
	slices.Sort(dataFiles)
	var files []File
	for _, name := range dataFiles {
		cmd := exec.CommandContext(ctx, g.gcov, "--json-format", "--stdout", "--branch-probabilities", name)
		cmd.Dir = g.work
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("coverage: %s %s: %w: %s", g.gcov, name, err, strings.TrimSpace(stderr.String()))
		}
		fs, err := parseGcovJSON(out, g.notesDir)
		if err != nil {
			return nil, fmt.Errorf("coverage: %s %s: %w", g.gcov, name, err)
		}
		files = append(files, fs...)
	}
	// The next run must not read this one's data.
	for _, name := range dataFiles {
		os.Remove(filepath.Join(g.work, name))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("coverage: gcov found none of the module's sources (in %s) in the data", g.notesDir)
	}
	return files, nil
}

// gcovJSON is the part of gcov's JSON intermediate format (gcc 9 and
// later) used here.
type gcovJSON struct {
	Files []struct {
		File  string `json:"file"`
		Lines []struct {
			LineNumber int   `json:"line_number"`
			Count      int64 `json:"count"`
			Branches   []struct {
				Count int64 `json:"count"`
			} `json:"branches"`
		} `json:"lines"`
	} `json:"files"`
}

// parseGcovJSON keeps the files that are the module's own sources (in
// srcDir, by base name): kernel headers' inline functions are not the
// module's lines.
func parseGcovJSON(data []byte, srcDir string) ([]File, error) {
	var g gcovJSON
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	var out []File
	for _, f := range g.Files {
		name := filepath.Base(f.File)
		src := filepath.Join(srcDir, name)
		if _, err := os.Stat(src); err != nil || strings.HasSuffix(name, ".mod.c") {
			continue
		}
		file := File{Name: name, Source: src}
		byLine := map[int]int{}
		for _, l := range f.Lines {
			// One source line may appear once per function inlined
			// into it: merge them.
			i, ok := byLine[l.LineNumber]
			if !ok {
				i = len(file.Lines)
				byLine[l.LineNumber] = i
				file.Lines = append(file.Lines, Line{Number: l.LineNumber})
			}
			file.Lines[i].Count += l.Count
			for _, b := range l.Branches {
				file.Lines[i].Branches = append(file.Lines[i].Branches, b.Count)
			}
		}
		slices.SortFunc(file.Lines, func(a, b Line) int { return a.Number - b.Number })
		out = append(out, file)
	}
	return out, nil
}

// lcov renders the result as an lcov tracefile (geninfo's format), which
// genhtml reads.
func (r *Result) lcov() string {
	var b strings.Builder
	writeLcov(&b, "kmodtest", r.Files)
	return b.String()
}

// writeLcov writes one test's section of an lcov tracefile: its name
// (TN) and a record per file.
func writeLcov(b *strings.Builder, test string, files []File) {
	fmt.Fprintf(b, "TN:%s\n", test)
	for _, f := range files {
		fmt.Fprintf(b, "SF:%s\n", f.Source)
		hit, brf, brh := 0, 0, 0
		for _, l := range f.Lines {
			for i, c := range l.Branches {
				taken := fmt.Sprint(c)
				if l.Count == 0 {
					taken = "-"
				}
				fmt.Fprintf(b, "BRDA:%d,0,%d,%s\n", l.Number, i, taken)
				brf++
				if c > 0 {
					brh++
				}
			}
		}
		for _, l := range f.Lines {
			fmt.Fprintf(b, "DA:%d,%d\n", l.Number, l.Count)
			if l.Count > 0 {
				hit++
			}
		}
		fmt.Fprintf(b, "BRF:%d\nBRH:%d\nLF:%d\nLH:%d\nend_of_record\n", brf, brh, len(f.Lines), hit)
	}
}
