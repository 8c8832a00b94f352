package report

import (
	"fmt"
	"html/template"
	"io"
	"sort"
)

// HTML writes one self-contained page: a summary, a bar chart of update
// age across the library (inline SVG), and a table sortable by clicking a
// column header (a few lines of inline script). It loads nothing from the
// network.
func (r Report) HTML(w io.Writer) error {
	return page.Execute(w, struct {
		R     Report
		Chart template.HTML
	}{r, template.HTML(r.chart())})
}

// ageBuckets are the chart's bars.
var ageBuckets = []struct {
	label string
	max   int // days, inclusive; -1: unknown
}{{"≤ 30 days", 30}, {"31–90", 90}, {"91–180", 180}, {"181–365", 365}, {"> 1 year", 1 << 30}, {"unknown", -1}}

// chart draws how many images fall in each age bucket.
func (r Report) chart() string {
	counts := make([]int, len(ageBuckets))
	for _, row := range r.Rows {
		for i, b := range ageBuckets {
			if (b.max < 0 && row.AgeDays == nil) || (row.AgeDays != nil && b.max >= 0 && *row.AgeDays <= b.max) {
				counts[i]++
				break
			}
		}
	}
	top := 1
	for _, c := range counts {
		top = max(top, c)
	}
	const barW, gap, h, top0 = 90, 20, 180, 25 // top0: room for the tallest bar's count
	s := fmt.Sprintf(`<svg id="age-chart" role="img" aria-label="images by days since last update" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, len(counts)*(barW+gap)+gap, h+top0+40)
	colors := []string{"#2e7d32", "#9e9d24", "#f9a825", "#ef6c00", "#c62828", "#757575"}
	for i, c := range counts {
		bh := c * h / top
		x := gap + i*(barW+gap)
		s += fmt.Sprintf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`, x, top0+h-bh, barW, bh, colors[i], ageBuckets[i].label, c)
		s += fmt.Sprintf(`<text x="%d" y="%d" text-anchor="middle" font-size="14">%d</text>`, x+barW/2, top0+h-bh-6, c)
		s += fmt.Sprintf(`<text x="%d" y="%d" text-anchor="middle" font-size="13">%s</text>`, x+barW/2, top0+h+22, template.HTMLEscapeString(ageBuckets[i].label))
	}
	return s + `</svg>`
}

// Sorted returns the rows ordered by age, oldest first (unknown last).
func (r Report) Sorted() []Row {
	rows := append([]Row(nil), r.Rows...)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].AgeDays, rows[j].AgeDays
		switch {
		case a == nil:
			return false
		case b == nil:
			return true
		}
		return *a > *b
	})
	return rows
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>offvm report: {{.R.Library}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin-top:1.5em}
th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left;font-size:14px}
th{background:#eee;cursor:pointer;user-select:none}
tr.flagged td{background:#fff3f0}
td.ok{color:#2e7d32}
.summary{font-size:18px}
</style></head><body>
<h1>VM library report</h1>
<p class="summary">{{.R.Library}}: <b>{{len .R.Rows}}</b> images, <b>{{.R.Flagged}}</b> need attention. Generated {{.R.Generated.Format "2006-01-02 15:04 UTC"}}{{if .R.Options.MaxAgeDays}}; maximum age {{.R.Options.MaxAgeDays}} days{{end}}{{if .R.Options.Require}}; required updates {{range $i, $k := .R.Options.Require}}{{if $i}}, {{end}}{{$k}}{{end}}{{end}}.</p>
<h2>Days since last update</h2>
{{.Chart}}
<table id="images"><thead><tr>
<th data-type="text">Image</th><th data-type="text">OS</th><th data-type="text">Build</th><th data-type="text">Host</th>
<th data-type="text">Last update</th><th data-type="num">Age (days)</th><th data-type="num">Patches</th><th data-type="text">Last commit</th><th data-type="text">Issues</th>
</tr></thead><tbody>
{{range .R.Sorted}}<tr{{if .Issues}} class="flagged"{{end}}><td>{{.Path}}</td><td>{{.OS}}</td><td>{{.Build}}</td><td>{{.Hostname}}</td><td>{{.LastUpdate}}</td><td>{{if .AgeDays}}{{.AgeDays}}{{end}}</td><td>{{.Patches}}</td><td class="commit">{{with .LastCommit}}<span title="{{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}">{{.String}}</span>{{end}}</td>
<td{{if not .Issues}} class="ok"{{end}}>{{range $i, $s := .Issues}}{{if $i}}; {{end}}{{$s}}{{end}}{{if .Error}}: {{.Error}}{{end}}{{if not .Issues}}ok{{end}}</td></tr>
{{end}}</tbody></table>
<script>
document.querySelectorAll('#images th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = document.querySelector('#images tbody');
    var rows = Array.from(body.rows), num = th.dataset.type === 'num';
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      if (num) { x = x === '' ? -1 : +x; y = y === '' ? -1 : +y; return (x - y) * dir; }
      return x.localeCompare(y) * dir;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
</script>
</body></html>
`))
