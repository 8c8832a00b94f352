package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
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

// TestLastCommit: the report's last-commit column comes from the newest
// manifest of each image's history, in text, JSON and HTML; an image
// without a history has none.
func TestLastCommit(t *testing.T) {
	dir := t.TempDir()
	withHistory, without := filepath.Join(dir, "web01.qcow2"), filepath.Join(dir, "db01.qcow2")
	if err := os.Mkdir(txn.HistoryDir(withHistory), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range []txn.Note{{Command: "reg import"}, {Command: "patch apply", Bundle: "contoso-agent-1.2.4"}} {
		c := txn.HistoryCommit{ID: i + 1, Time: time.Date(2026, 12, 3, 9, 10+i, 0, 0, time.UTC), Note: n}
		data, _ := json.Marshal(c)
		if err := os.WriteFile(filepath.Join(txn.HistoryDir(withHistory), fmt.Sprintf("%06d.json", i+1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lin := &inspect.OS{Family: "linux"}
	r := Build(dir, []mount.Info{{Path: withHistory, OS: lin}, {Path: without, OS: lin}}, Options{})
	const want = "2026-12-03 09:11 UTC #2 patch apply contoso-agent-1.2.4"
	for _, row := range r.Rows {
		switch row.Path {
		case withHistory:
			if got := row.LastCommit.String(); got != want {
				t.Errorf("last commit %q, want %q", got, want)
			}
		case without:
			if row.LastCommit != nil {
				t.Errorf("an image without history has last commit %+v", row.LastCommit)
			}
		}
	}
	var txt, html, js bytes.Buffer
	if err := r.Text(&txt); err != nil || !strings.Contains(txt.String(), "LAST COMMIT") || !strings.Contains(txt.String(), want) {
		t.Errorf("text:\n%s (%v)", txt.String(), err)
	}
	if err := r.HTML(&html); err != nil || !strings.Contains(html.String(), "<th data-type=\"text\">Last commit</th>") || !strings.Contains(html.String(), want) {
		t.Errorf("html lacks the column (%v)", err)
	}
	if err := json.NewEncoder(&js).Encode(r); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Images []struct {
			Path       string `json:"path"`
			LastCommit *struct {
				ID      int    `json:"id"`
				Command string `json:"command"`
				Bundle  string `json:"bundle"`
			} `json:"last_commit"`
		} `json:"images"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, im := range back.Images {
		if lc := im.LastCommit; im.Path == withHistory && (lc == nil || lc.ID != 2 || lc.Command != "patch apply" || lc.Bundle != "contoso-agent-1.2.4") {
			t.Errorf("JSON last_commit %+v", lc)
		}
	}
}
