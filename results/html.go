package results

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/verdict"
)

// maxFailureLines bounds the output quoted per failure in the HTML page;
// the shard's JSON and artifacts hold the rest.
const maxFailureLines = 300

// htmlPage is what the page template shows.
type htmlPage struct {
	Title    string
	Shards   []htmlShard
	Steps    []string
	Rows     []htmlRow
	First    string
	Timings  []harness.Row
	Accel    string
	Others   []Other
	Failures []htmlFailure
}

type htmlShard struct {
	Name, Status string
	Elapsed      string
}

type htmlRow struct {
	Name  string
	Cells []htmlCell
}

type htmlCell struct {
	Class, Mark, Title string
}

type htmlFailure struct {
	ID string
	Failure
	Lines   string
	Omitted int
}

// HTML writes the report as one self-contained page to w: no scripts,
// styles or images from elsewhere, so that it opens from a CI artifact
// as it is.
func (r *Results) HTML(w io.Writer) error {
	fails := r.Failures()
	p := htmlPage{Title: fmt.Sprintf("kmodtest: %d shard(s), %d failure(s)", len(r.Shards), len(fails)), Others: r.Others()}
	for _, s := range r.Shards {
		st := "pass"
		if s.Failed() {
			st = "fail"
		}
		p.Shards = append(p.Shards, htmlShard{Name: s.Name, Status: st, Elapsed: fmt.Sprintf("%.1fs", s.Elapsed)})
	}
	steps := r.steps()
	accel, rows := r.rows(steps)
	p.Accel = string(accel)
	p.Steps = append([]string{harness.StepBuild, verdict.BootStep}, steps...)
	p.Steps = append(p.Steps, verdict.LogStep)
	marks := map[string]htmlCell{
		contract.StatusPass: {Class: "pass", Mark: "."},
		contract.StatusFail: {Class: "fail", Mark: "F"},
		contract.StatusSkip: {Class: "skip", Mark: "s"},
	}
	for _, row := range rows {
		hr := htmlRow{Name: row.Name}
		for _, st := range p.Steps {
			c, ok := marks[row.Steps[st]]
			if !ok {
				c = htmlCell{Class: "none", Mark: "-"}
			}
			c.Title = row.Name + " " + st + ": " + cmp.Or(row.Steps[st], "not run")
			hr.Cells = append(hr.Cells, c)
		}
		p.Rows = append(p.Rows, hr)
		if row.First != "" && p.First == "" {
			p.First = row.Name + ": " + row.First
		}
		if len(row.Timings) > 0 {
			p.Timings = append(p.Timings, row)
		}
	}
	for i, f := range fails {
		lines := f.Output
		hf := htmlFailure{ID: fmt.Sprintf("failure-%d", i+1), Failure: f}
		if len(lines) > maxFailureLines {
			hf.Omitted = len(lines) - maxFailureLines
			lines = lines[:maxFailureLines]
		}
		hf.Lines = strings.Join(lines, "\n")
		p.Failures = append(p.Failures, hf)
	}
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write HTML: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	// The six columns of Row.Timings: fetch to probe.
	"timingColumns": func() []int { return make([]int, 6) },
	"secs": func(row harness.Row, i int) string {
		if i < len(row.Timings) {
			return fmt.Sprintf("%.2f", row.Timings[i].Seconds())
		}
		return ""
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th.step { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; font-size: 85%; }
td.pass { background: #dfd; text-align: center; }
td.fail { background: #f99; text-align: center; font-weight: bold; }
td.skip { background: #eee; text-align: center; }
td.none { color: #999; text-align: center; }
.fail-text { color: #b00; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 85%; }
code.rerun { display: block; background: #ffd; padding: 0.4em; white-space: pre-wrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Shards: {{range $i, $s := .Shards}}{{if $i}}, {{end}}{{$s.Name}} (<span class="{{if eq $s.Status "fail"}}fail-text{{end}}">{{$s.Status}}</span>, {{$s.Elapsed}}){{end}}</p>

<h2>Kernels x steps</h2>
{{if .Rows}}<table>
<tr><th>target</th>{{range .Steps}}<th class="step">{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{.Name}}</th>{{range .Cells}}<td class="{{.Class}}" title="{{.Title}}">{{.Mark}}</td>{{end}}</tr>
{{end}}</table>
<p>. pass, F fail, s skip, - not run{{if .First}}. First failure: <span class="fail-text">{{.First}}</span>{{end}}</p>
{{else}}<p>No shard ran TestModule.</p>{{end}}

{{if .Timings}}<h2>Timings (seconds{{if .Accel}}; accelerator {{.Accel}}{{end}})</h2>
<table>
<tr><th>target</th><th>cpu</th><th>fetch</th><th>build root</th><th>module</th><th>initramfs</th><th>boot</th><th>probe</th><th>cached</th></tr>
{{range .Timings}}<tr><th>{{.Name}}</th><td>{{.CPU}}</td>{{$row := .}}{{range $i, $_ := timingColumns}}<td class="num">{{secs $row $i}}</td>{{end}}<td>{{.Cached}}</td></tr>
{{end}}</table>{{end}}

{{if .Others}}<h2>Other tests</h2>
<table>
<tr><th>test</th><th>status</th><th>subtests</th><th>shards</th><th>skip reason</th></tr>
{{range .Others}}<tr><th>{{.Name}}</th><td class="{{if eq .Status "fail"}}fail{{else if eq .Status "pass"}}pass{{else}}skip{{end}}">{{.Status}}</td><td class="num">{{.Subtests}}</td><td>{{range $i, $s := .Shards}}{{if $i}}, {{end}}{{$s}}{{end}}</td><td>{{.Skip}}</td></tr>
{{end}}</table>{{end}}

<h2>Failures ({{len .Failures}})</h2>
{{range .Failures}}<section id="{{.ID}}">
<h3><a href="#{{.ID}}">{{.Shard}}: {{.Test}}</a> ({{.Status}})</h3>
{{if .Rerun}}<p>Rerun:</p><code class="rerun">{{.Rerun}}</code>{{end}}
<pre>{{.Lines}}{{if .Omitted}}
… {{.Omitted}} more line(s) in the shard's go test output{{end}}</pre>
</section>
{{else}}<p>None.</p>{{end}}
</body>
</html>
`))
