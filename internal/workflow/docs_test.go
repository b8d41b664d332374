package workflow

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// maxReadmeLines keeps the README a page a newcomer reads to the end;
// detail belongs in a docs/ page linked from it.
const maxReadmeLines = 160

// TestDocs checks the repository's documentation: the README is short,
// links every docs/ page, and no relative link in it or in docs/ points to
// a file or heading that does not exist.
func TestDocs(t *testing.T) {
	problems, err := docProblems("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestDocProblemsFound shows each check can fail, on a small tree made
// to break every rule once.
func TestDocProblemsFound(t *testing.T) {
	root := t.TempDir()
	readme := "# x\n\n[ok](docs/a.md) [gone](docs/gone.md) [bad anchor](docs/a.md#nowhere)\n" +
		"```\n[in a code block](docs/ignored.md)\n```\n" + strings.Repeat("line\n", maxReadmeLines)
	write(t, filepath.Join(root, "README.md"), readme)
	write(t, filepath.Join(root, "docs", "a.md"), "# A\n\n## The debug kernel (6.12-debug)\n\n[self](#the-debug-kernel-612-debug) [up](../README.md) [`code`](#missing)\n")
	write(t, filepath.Join(root, "docs", "unlinked.md"), "# U\n")

	problems, err := docProblems(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("README.md has %d lines, more than %d", maxReadmeLines+6, maxReadmeLines),
		`README.md: link "docs/gone.md"`,
		`README.md: link "docs/a.md#nowhere"`,
		`docs/a.md: link "#missing"`,
		"docs/unlinked.md is not linked from README.md",
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("want a problem starting %q, got:\n%s", w, strings.Join(problems, "\n"))
		}
	}
	if len(problems) != len(want) {
		t.Errorf("want %d problems, got %d:\n%s", len(want), len(problems), strings.Join(problems, "\n"))
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// docProblems returns what is wrong with the documentation under root,
// each problem with its fix.
func docProblems(root string) ([]string, error) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return nil, fmt.Errorf("read the README: %w", err)
	}
	var problems []string
	if n := strings.Count(string(readme), "\n"); n > maxReadmeLines {
		problems = append(problems, fmt.Sprintf("README.md has %d lines, more than %d: move detail into a docs/ page and link it", n, maxReadmeLines))
	}

	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, fmt.Errorf("list docs pages: %w", err)
	}
	files := append([]string{filepath.Join(root, "README.md")}, pages...)
	linked := map[string]bool{}
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		name, _ := filepath.Rel(root, file)
		for _, link := range relativeLinks(string(text)) {
			target, anchor, _ := strings.Cut(link, "#")
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), target)
				if _, err := os.Stat(path); err != nil {
					problems = append(problems, fmt.Sprintf("%s: link %q points to %s, which does not exist: fix the link or add the file", name, link, target))
					continue
				}
			}
			if file == files[0] {
				linked[filepath.Clean(path)] = true
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			ok, err := hasAnchor(path, anchor)
			if err != nil {
				return nil, err
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: link %q names no heading of %s: fix the anchor or the heading", name, link, filepath.Base(path)))
			}
		}
	}
	for _, page := range pages {
		if !linked[filepath.Clean(page)] {
			name, _ := filepath.Rel(root, page)
			problems = append(problems, fmt.Sprintf("%s is not linked from README.md: add it to the README's \"Where to read on\"", name))
		}
	}
	return problems, nil
}

var (
	fencedBlock = regexp.MustCompile("(?ms)^```.*?^```")
	codeSpan    = regexp.MustCompile("`[^`\n]*`")
	mdLink      = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	scheme      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// relativeLinks returns the targets of the Markdown links in text that
// stay inside the repository: not web or mail addresses, and not text
// inside code, which only shows links.
func relativeLinks(text string) []string {
	text = fencedBlock.ReplaceAllString(text, "")
	text = codeSpan.ReplaceAllString(text, "code")
	var links []string
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		if !scheme.MatchString(m[1]) {
			links = append(links, m[1])
		}
	}
	return links
}

// hasAnchor reports whether the Markdown file at path has a heading whose
// anchor, as GitHub makes it, is anchor.
func hasAnchor(path, anchor string) (bool, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(fencedBlock.ReplaceAllString(string(text), ""), "\n") {
		heading, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		slug := headingAnchor(heading)
		if n := seen[slug]; n > 0 {
			seen[slug]++
			slug = fmt.Sprintf("%s-%d", slug, n)
		} else {
			seen[slug] = 1
		}
		if slug == anchor {
			return true, nil
		}
	}
	return false, nil
}

// headingAnchor is GitHub's anchor for a heading: lower case, spaces as
// hyphens, and everything but letters, digits, hyphens and underscores
// left out.
func headingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
