package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Text prints the report for a terminal: a summary line, then one row per
// image, flagged images first.
func (r Report) Text(w io.Writer) error {
	fmt.Fprintf(w, "%s: %d images, %d need attention\n\n", r.Library, len(r.Rows), r.Flagged())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tOS\tBUILD\tHOST\tLAST UPDATE\tAGE\tPATCHES\tLAST COMMIT\tISSUES")
	for _, row := range r.Rows {
		age := "-"
		if row.AgeDays != nil {
			age = fmt.Sprintf("%dd", *row.AgeDays)
		}
		issues := strings.Join(row.Issues, "; ")
		if row.Error != "" {
			issues += ": " + row.Error
		}
		if issues == "" {
			issues = "ok"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", row.Path, dash(row.OS), dash(row.Build), dash(row.Hostname), dash(row.LastUpdate), age, row.Patches,
			dash(row.LastCommit.String()), issues)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
