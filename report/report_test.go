package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
)

func sp(s string) *string { return &s }

func TestRules(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	build := 17763
	win := mount.Info{Path: "win.vhdx", OS: &inspect.OS{Family: "windows", ProductName: sp("Windows Server 2019"), Build: &build,
		LastUpdate: sp("2026-10-01T00:00:00Z")}, Updates: []any{inspect.Update{ID: "KB1"}}}
	old := mount.Info{Path: "old.vhdx", OS: &inspect.OS{Family: "windows", LastUpdate: sp("2020-01-01T00:00:00Z")}}
	linux := mount.Info{Path: "db.qcow2", OS: &inspect.OS{Family: "linux"}}
	broken := mount.ErrorInfo("bad.vhd", errString("parent missing"))
	cases := []struct {
		name   string
		opts   Options
		issues map[string]string // path → issues joined, "" for compliant
	}{
		{"no rules", Options{}, map[string]string{"win.vhdx": "", "old.vhdx": "", "db.qcow2": "", "bad.vhd": "cannot be opened"}},
		{"max age", Options{MaxAgeDays: 90}, map[string]string{"win.vhdx": "", "old.vhdx": "not updated for 2517 days", "db.qcow2": "last update unknown"}},
		{"required KBs apply to Windows only", Options{Require: []string{"kb1", "KB2"}}, map[string]string{"win.vhdx": "missing KB2", "old.vhdx": "missing KB1, KB2", "db.qcow2": ""}},
	}
	for _, c := range cases {
		c.opts.Now = now
		r := Build("lib", []mount.Info{win, old, linux, broken}, c.opts)
		for _, row := range r.Rows {
			want, ok := c.issues[row.Path]
			if ok && strings.Join(row.Issues, "; ") != want {
				t.Errorf("%s: %s issues %q, want %q", c.name, row.Path, row.Issues, want)
			}
		}
		var txt, html bytes.Buffer
		if err := r.Text(&txt); err != nil || !strings.Contains(txt.String(), "4 images") {
			t.Errorf("%s: text %q, %v", c.name, txt.String(), err)
		}
		if err := r.HTML(&html); err != nil || !strings.Contains(html.String(), "<svg") || strings.Contains(html.String(), "http://") && !strings.Contains(html.String(), "http://www.w3.org/2000/svg") {
			t.Errorf("%s: html: %v", c.name, err)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
