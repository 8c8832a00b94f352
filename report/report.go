// Package report is the library's compliance view: how long since each
// image was updated, which required updates it lacks, and which images
// nobody can open. It renders as text for a terminal and as one
// self-contained HTML page (no network: inline CSS, script and SVG).
package report

import (
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vmconfig"
)

// Options are the report's rules.
type Options struct {
	MaxAgeDays int      // flag images whose last update is older (0: no rule)
	Require    []string // flag images missing any of these updates (KB numbers)
	Now        time.Time
}

// Row is one image of the report.
type Row struct {
	Path       string   `json:"path"`
	OS         string   `json:"os"`
	Build      string   `json:"build"`
	Hostname   string   `json:"hostname"`
	LastUpdate string   `json:"last_update"` // "" when unknown
	AgeDays    *int     `json:"age_days"`
	Missing    []string `json:"missing"`
	// Staged are the missing ones offvm staged for the next boot (still
	// missing: only Windows' servicing says installed).
	Staged  []string `json:"staged"`
	Patches int      `json:"patches"`
	VM      string   `json:"vm"`       // the VM the disk belongs to, "" when none says
	VMState string   `json:"vm_state"` // its state (off, saved, suspended, running)
	Error   string   `json:"error,omitempty"`
	Issues  []string `json:"issues"` // why the image is flagged; empty when compliant
	// LastCommit is the newest commit of the image's history (offvm log);
	// nil when offvm never committed to it.
	LastCommit *Commit `json:"last_commit"`
}

// Commit is one commit of an image's history, as the report shows it.
type Commit struct {
	ID         int       `json:"id"`
	Time       time.Time `json:"time"`
	Command    string    `json:"command"`          // unmount, reg import, patch apply, ...
	Bundle     string    `json:"bundle,omitempty"` // the patch bundle's id
	RolledBack bool      `json:"rolled_back,omitempty"`
}

// String is the commit in a cell, time first so that the column sorts
// by it: "2026-12-03 09:14 UTC #3 patch apply kb-1".
func (c *Commit) String() string {
	if c == nil {
		return ""
	}
	s := c.Time.UTC().Format("2006-01-02 15:04 UTC") + " #" + itoa(c.ID) + " " + c.Command
	if c.Bundle != "" {
		s += " " + c.Bundle
	}
	if c.RolledBack {
		s += " (rolled back)"
	}
	return s
}

// lastCommit reads the image's history beside it; an image that is not
// a local file (an inventory from elsewhere) or has no history has none.
func lastCommit(path string) *Commit {
	h, err := txn.LastCommit(path)
	if err != nil {
		slog.Warn("report: history unreadable", "image", path, "err", err)
	}
	if h == nil {
		return nil
	}
	return &Commit{ID: h.ID, Time: h.Time, Command: h.Note.Command, Bundle: h.Note.Bundle, RolledBack: h.RolledBack != nil}
}

// Report is the whole library's view.
type Report struct {
	Library   string    `json:"library"`
	Generated time.Time `json:"generated"`
	Options   Options   `json:"-"`
	Rows      []Row     `json:"images"`
}

// Build applies the rules to each image's description.
func Build(lib string, infos []mount.Info, opts Options) Report {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	r := Report{Library: lib, Generated: opts.Now.UTC(), Options: opts}
	for _, inf := range infos {
		r.Rows = append(r.Rows, row(inf, opts))
	}
	sort.SliceStable(r.Rows, func(i, j int) bool { return len(r.Rows[i].Issues) > len(r.Rows[j].Issues) })
	return r
}

func row(inf mount.Info, opts Options) Row {
	rw := Row{Path: inf.Path, Patches: len(inf.Patches), Missing: []string{}, Staged: []string{}, Issues: []string{},
		LastCommit: lastCommit(inf.Path)}
	vmIssue(&rw, inf)
	if inf.Error != nil {
		rw.Error = *inf.Error
		rw.Issues = append(rw.Issues, "cannot be opened")
		return rw
	}
	o, _ := inf.OS.(*inspect.OS)
	if o == nil {
		rw.Issues = append(rw.Issues, "no operating system recognised")
		return rw
	}
	rw.OS, rw.Hostname = val(o.ProductName), val(o.Hostname)
	if rw.OS == "" {
		rw.OS = o.Family
	}
	if o.Build != nil {
		rw.Build = itoa(*o.Build)
		if o.UBR != nil {
			rw.Build += "." + itoa(*o.UBR)
		}
	}
	if o.LastUpdate != nil {
		if t, err := time.Parse(time.RFC3339, *o.LastUpdate); err == nil {
			rw.LastUpdate = t.Format("2006-01-02")
			d := int(opts.Now.Sub(t).Hours() / 24)
			rw.AgeDays = &d
			if opts.MaxAgeDays > 0 && d > opts.MaxAgeDays {
				rw.Issues = append(rw.Issues, "not updated for "+itoa(d)+" days")
			}
		}
	} else if opts.MaxAgeDays > 0 {
		rw.Issues = append(rw.Issues, "last update unknown")
	}
	have := map[string]bool{}
	for _, u := range inf.Updates {
		if up, ok := u.(inspect.Update); ok {
			have[strings.ToUpper(up.ID)] = true
		}
	}
	staged := map[string]bool{}
	for _, s := range inf.Staged {
		if st, ok := s.(inspect.StagedUpdate); ok && st.State == "staged" {
			staged[strings.ToUpper(st.ID)] = true
		}
	}
	var missing []string
	for _, kb := range opts.Require {
		if kb = strings.ToUpper(strings.TrimSpace(kb)); kb != "" && !have[kb] && o.Family == "windows" {
			rw.Missing = append(rw.Missing, kb)
			if staged[kb] {
				rw.Staged = append(rw.Staged, kb)
				kb += " (staged for the next boot)"
			}
			missing = append(missing, kb)
		}
	}
	if len(missing) > 0 {
		rw.Issues = append(rw.Issues, "missing "+strings.Join(missing, ", "))
	}
	return rw
}

// vmIssue flags a disk whose VM sleeps (or runs): offvm keeps it
// read-only, so no patch reached it, whatever else the row says.
func vmIssue(rw *Row, inf mount.Info) {
	vi, ok := inf.VM.(*library.VMInfo)
	if !ok || vi == nil {
		return
	}
	rw.VM, rw.VMState = vi.Name, val(vi.State)
	switch rw.VMState {
	case vmconfig.StateSaved, vmconfig.StateSuspended:
		rw.Issues = append(rw.Issues, "VM "+vi.Name+" is "+rw.VMState+" ("+val(vi.StateFile)+"): its disk cannot be patched until it is shut down")
	case vmconfig.StateRunning:
		rw.Issues = append(rw.Issues, "VM "+vi.Name+" is running: its disk cannot be patched")
	}
}

func val(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func itoa(n int) string { return strconv.Itoa(n) }

// Flagged counts the images with an issue.
func (r Report) Flagged() int {
	n := 0
	for _, row := range r.Rows {
		if len(row.Issues) > 0 {
			n++
		}
	}
	return n
}
