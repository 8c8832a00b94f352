package txn

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The history of an image lives in the directory <image>.offvm-history:
//
//	000001.json   the manifest of commit 1: when, what made it, what it changed
//	000001.undo   its undo record, once a later commit took the place of
//	              <image>.offvm-undo (which always holds the newest commit's)
//	keep          optional: how many undo records to keep (default DefaultKeep)
//	rollback-to.json  a rollback --to in progress (see history_rollback.go)
//
// A manifest is bound to its undo record by the record's own seal (the
// COMT SHA-256), so a manifest never describes a record it was not made
// from. Manifests are written after the commit is durable and are only a
// description: losing one (a crash right after the commit) costs the
// command's name, never the ability to undo, since the undo record itself
// says which bytes changed.

// DefaultKeep is how many undo records an image keeps when its history
// says nothing else.
const DefaultKeep = 5

// maxRanges bounds the byte ranges a manifest lists per host file; more
// are merged into their neighbours' span (the count of bytes stays exact).
const maxRanges = 4096

// Note says what made a commit, for its manifest.
type Note struct {
	Command string `json:"command"`          // "unmount", "reg import", "patch apply", ...
	Bundle  string `json:"bundle,omitempty"` // the patch bundle's id
}

// HistoryFile is one host file a commit changed.
type HistoryFile struct {
	Path   string     `json:"path"` // relative to the image's directory
	OldLen int64      `json:"old_len"`
	NewLen int64      `json:"new_len"`
	Bytes  int64      `json:"bytes"`  // bytes written
	Ranges [][2]int64 `json:"ranges"` // [offset, length], in order, adjacent ones merged
}

// HistoryCommit is one commit's manifest, and its state in the history.
type HistoryCommit struct {
	ID         int           `json:"id"`
	Time       time.Time     `json:"time"`
	Note       Note          `json:"made_by"`
	Seal       string        `json:"seal"` // hex SHA-256 sealing its undo record
	Bytes      int64         `json:"bytes"`
	Files      []HistoryFile `json:"files"`
	RolledBack *time.Time    `json:"rolled_back,omitempty"`
	// Guest counts what the commit changed in the guest, computed at
	// commit time (or, for a commit recorded before offvm did that, once
	// offvm diff or log --changes computed it); nil when unknown.
	Guest *GuestSummary `json:"guest,omitempty"`
	// Changes lists the guest's changes (a guestdiff.Change array), as
	// computed at commit time.
	Changes json.RawMessage `json:"guest_changes,omitempty"`
	// GuestUnknown says why the commit has no guest changes recorded
	// ("changes unknown: ...").
	GuestUnknown string  `json:"guest_unknown,omitempty"`
	GuestSeconds float64 `json:"guest_seconds,omitempty"` // what computing them took
	// State is computed when the history is read: "undoable", "rolled
	// back" or "record dropped".
	State string `json:"state"`
	// CanUndo says its undo record is kept: rollback --to can undo it.
	CanUndo bool   `json:"undoable"`
	record  string // path of its undo record, "" when there is none
}

// GuestSummary counts a commit's changes inside the guest.
type GuestSummary struct {
	Files  int `json:"files"`  // files, directories and links created, changed, renamed or deleted
	Values int `json:"values"` // registry keys and values
	// Omitted counts the changes left out of the list (counted above):
	// the list is bounded, the counts are not.
	Omitted int `json:"omitted,omitempty"`
}

// SetGuestSummary keeps what commit id changed in the guest in its
// manifest, for offvm log. The caller holds the image's Lock.
func SetGuestSummary(image string, id int, g GuestSummary) error {
	all, err := readManifests(image)
	if err != nil {
		return err
	}
	for i := range all {
		if all[i].ID == id {
			all[i].Guest, all[i].State = &g, ""
			return writeManifest(image, &all[i])
		}
	}
	return fmt.Errorf("txn: history of %s: no manifest for commit %d", image, id)
}

// Undoable reports whether the commit's undo record is there.
func (c HistoryCommit) Undoable() bool { return c.record != "" }

// HistoryDir is the directory of image's history.
func HistoryDir(image string) string { return image + HistorySuffix }

func manifestPath(image string, id int) string {
	return filepath.Join(HistoryDir(image), fmt.Sprintf("%06d.json", id))
}

func archivedPath(image string, id int) string {
	return filepath.Join(HistoryDir(image), fmt.Sprintf("%06d.undo", id))
}

var (
	noteMu sync.Mutex
	note   = Note{Command: "unknown"}
)

// SetCommitNote sets what the manifests of this process's commits say
// made them (the command line sets it once).
func SetCommitNote(n Note) {
	noteMu.Lock()
	note = n
	noteMu.Unlock()
}

func currentNote() Note {
	noteMu.Lock()
	defer noteMu.Unlock()
	return note
}

// promoteJournal turns an applied journal into the undo record, first
// moving the previous undo record into the history, then writes the new
// commit's manifest. The history is best effort: a failure there is
// logged and never fails the commit, which is durable already; at worst
// the previous record is overwritten, as it was before histories existed.
func promoteJournal(image, jpath string) error {
	if err := archiveUndo(image); err != nil {
		slog.Warn("history: the previous undo record is dropped", "image", image, "err", err)
	}
	if err := renameDurably(jpath, UndoPath(image)); err != nil {
		return err
	}
	if err := recordCommit(image); err != nil {
		slog.Warn("history: no manifest for the commit", "image", image, "err", err)
	} else {
		dropPending(image)
	}
	if err := Prune(image, KeepOf(image)); err != nil {
		slog.Warn("history: pruning", "image", image, "err", err)
	}
	return nil
}

// archiveUndo moves <image>.offvm-undo, when there is one, into the
// history under its commit's id.
func archiveUndo(image string) error {
	upath := UndoPath(image)
	if !fileExists(upath) {
		return nil
	}
	c, err := manifestFor(image, upath)
	if err != nil {
		return err
	}
	return renameDurably(upath, archivedPath(image, c.ID))
}

// recordCommit writes the manifest of the undo record now at UndoPath.
func recordCommit(image string) error {
	_, err := manifestFor(image, UndoPath(image))
	return err
}

// manifestFor finds the manifest sealed like the record at rpath, and
// writes one (the next id, what its pending record says) when there is
// none.
func manifestFor(image, rpath string) (*HistoryCommit, error) {
	j, err := verifyJournal(rpath)
	if err != nil {
		return nil, err
	}
	seal := hex.EncodeToString(j.Sum[:])
	all, err := readManifests(image)
	if err != nil {
		return nil, err
	}
	next := 1
	for i := range all {
		if all[i].Seal == seal && all[i].RolledBack == nil {
			return &all[i], nil
		}
		next = max(next, all[i].ID+1)
	}
	c, err := describeRecord(rpath, j)
	if err != nil {
		return nil, err
	}
	c.ID, c.Seal = next, seal
	if fi, err := os.Stat(rpath); err == nil {
		c.Time = fi.ModTime().UTC()
	}
	p, _ := pendingFor(image, rpath)
	c.takePending(p)
	return c, writeManifest(image, c)
}

// describeRecord lists what a verified record changed, file by file.
func describeRecord(rpath string, j *journal) (*HistoryCommit, error) {
	c := &HistoryCommit{Time: time.Now().UTC(), Files: make([]HistoryFile, len(j.Files))}
	for i, f := range j.Files {
		c.Files[i] = HistoryFile{Path: f.Path, OldLen: f.OldLen, NewLen: f.NewLen, Ranges: [][2]int64{}}
	}
	f, err := os.Open(rpath)
	if err != nil {
		return nil, fmt.Errorf("txn: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("txn: %w", err)
	}
	_, err = readJournal(f, fi.Size(), func(r region) error {
		if len(r.New) > 0 {
			c.Files[r.File].add(r.Off, int64(len(r.New)))
			c.Bytes += int64(len(r.New))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("txn: %s: %w", rpath, err)
	}
	return c, nil
}

// add appends a range, merging it into the last one when they touch, and
// once maxRanges is reached widening the last one instead.
func (hf *HistoryFile) add(off, n int64) {
	hf.Bytes += n
	if k := len(hf.Ranges); k > 0 {
		last := &hf.Ranges[k-1]
		if off <= last[0]+last[1] && off >= last[0] || k >= maxRanges {
			last[1] = max(last[0]+last[1], off+n) - last[0]
			return
		}
	}
	hf.Ranges = append(hf.Ranges, [2]int64{off, n})
}

// writeManifest writes c durably (temporary name, fsync, rename).
func writeManifest(image string, c *HistoryCommit) error {
	dir := HistoryDir(image)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("txn: history of %s: %w", image, err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("txn: history of %s: %w", image, err)
	}
	return writeFileDurably(manifestPath(image, c.ID), data)
}

// writeFileDurably replaces path with data so that a crash leaves the
// old content or the new one, never a torn file.
func writeFileDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	traceCreate(tmp)
	_, err = f.Write(data)
	traceWrite(tmp, 0, data)
	if err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("txn: write %s: %w", path, err)
	}
	return renameDurably(tmp, path)
}

// readManifests reads every manifest of image's history, oldest first.
// A manifest that does not parse is skipped with a warning: it is a
// description, and the undo records stay usable without it.
func readManifests(image string) ([]HistoryCommit, error) {
	des, err := os.ReadDir(HistoryDir(image))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("txn: history of %s: %w", image, err)
	}
	var out []HistoryCommit
	for _, de := range des {
		id, ok := entryID(de.Name(), ".json")
		if !ok {
			continue
		}
		var c HistoryCommit
		data, err := os.ReadFile(filepath.Join(HistoryDir(image), de.Name()))
		if err == nil {
			err = json.Unmarshal(data, &c)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // renamed over while listed, by a writer under the lock
		}
		if err != nil || c.ID != id {
			slog.Warn("history: unreadable manifest skipped", "image", image, "file", de.Name(), "err", err)
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out, nil
}

// entryID parses "000012<suffix>".
func entryID(name, suffix string) (int, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || len(s) != 6 {
		return 0, false
	}
	id, err := strconv.Atoi(s)
	return id, err == nil && id > 0
}

// History lists image's commits, newest first, each with its state. The
// newest commit's undo record is <image>.offvm-undo, the older ones' are
// in the history directory. A record without a manifest (a crash came
// between the commit and its manifest) is listed as made by "unknown".
func History(image string) ([]HistoryCommit, error) {
	all, err := readManifests(image)
	if err != nil {
		return nil, err
	}
	cur := ""
	if j, err := verifyJournal(UndoPath(image)); err == nil {
		cur = hex.EncodeToString(j.Sum[:])
	}
	found := false
	for i := range all {
		c := &all[i]
		switch {
		case c.RolledBack != nil:
			c.State = "rolled back"
		case cur != "" && c.Seal == cur:
			c.record, found = UndoPath(image), true
		case fileExists(archivedPath(image, c.ID)):
			c.record = archivedPath(image, c.ID)
		default:
			c.State = "record dropped"
		}
		if c.CanUndo = c.record != ""; c.CanUndo {
			c.State = "undoable"
		}
	}
	if cur != "" && !found {
		all = append(all, unknownCommit(image, all))
	}
	sort.Slice(all, func(i, k int) bool { return all[i].ID > all[k].ID })
	return all, nil
}

// unknownCommit describes an undo record that has no manifest.
func unknownCommit(image string, all []HistoryCommit) HistoryCommit {
	c := HistoryCommit{State: "undoable", CanUndo: true, record: UndoPath(image), ID: 1}
	p, _ := pendingFor(image, UndoPath(image))
	c.takePending(p)
	if len(all) > 0 {
		c.ID = all[len(all)-1].ID + 1
	}
	if j, err := verifyJournal(UndoPath(image)); err == nil {
		if d, err := describeRecord(UndoPath(image), j); err == nil {
			c.Files, c.Bytes = d.Files, d.Bytes
		}
		c.Seal = hex.EncodeToString(j.Sum[:])
	}
	if fi, err := os.Stat(UndoPath(image)); err == nil && p == nil {
		c.Time = fi.ModTime().UTC()
	}
	return c
}

// markRolledBack records in the manifest sealed by seal that its commit
// was undone (by Rollback or rollback --to).
func markRolledBack(image string, seal [32]byte) {
	all, err := readManifests(image)
	if err != nil {
		slog.Warn("history: marking a rolled back commit", "image", image, "err", err)
		return
	}
	s := hex.EncodeToString(seal[:])
	for i := range all {
		if all[i].Seal == s && all[i].RolledBack == nil {
			now := time.Now().UTC()
			all[i].RolledBack, all[i].State = &now, ""
			if err := writeManifest(image, &all[i]); err != nil {
				slog.Warn("history: marking a rolled back commit", "image", image, "err", err)
			}
		}
	}
}

// KeepOf is how many undo records image keeps: its history's keep file,
// else DefaultKeep.
func KeepOf(image string) int {
	data, err := os.ReadFile(filepath.Join(HistoryDir(image), "keep"))
	if err != nil {
		return DefaultKeep
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 1 {
		return DefaultKeep
	}
	return n
}

// SetKeep makes image keep n undo records from now on and drops the
// older ones at once.
func SetKeep(image string, n int) error {
	if n < 1 {
		return fmt.Errorf("txn: history of %s: keep %d: must be at least 1", image, n)
	}
	if err := os.MkdirAll(HistoryDir(image), 0o755); err != nil {
		return fmt.Errorf("txn: history of %s: %w", image, err)
	}
	if err := writeFileDurably(filepath.Join(HistoryDir(image), "keep"), []byte(strconv.Itoa(n)+"\n")); err != nil {
		return err
	}
	return Prune(image, n)
}

// Prune drops the undo records of all but the newest keep undoable
// commits; their manifests stay, so the log still lists them.
func Prune(image string, keep int) error {
	cs, err := History(image)
	if err != nil {
		return err
	}
	n := 0
	for _, c := range cs {
		if !c.Undoable() {
			continue
		}
		if n++; n > keep && c.record != UndoPath(image) {
			if err := removeDurably(c.record); err != nil {
				return err
			}
		}
	}
	return nil
}

// LastCommit reads the newest manifest of image's history without
// verifying any undo record (the library report asks it of every image):
// nil when the image has none. Its State is "rolled back" or "".
func LastCommit(image string) (*HistoryCommit, error) {
	des, err := os.ReadDir(HistoryDir(image))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("txn: history of %s: %w", image, err)
	}
	best := 0
	for _, de := range des {
		if id, ok := entryID(de.Name(), ".json"); ok {
			best = max(best, id)
		}
	}
	if best == 0 {
		return nil, nil
	}
	data, err := os.ReadFile(manifestPath(image, best))
	if err != nil {
		return nil, fmt.Errorf("txn: history of %s: %w", image, err)
	}
	var c HistoryCommit
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("txn: history of %s: %s: %w", image, manifestPath(image, best), err)
	}
	c.State, c.CanUndo, c.Changes = "", false, nil
	if c.RolledBack != nil {
		c.State = "rolled back"
	}
	return &c, nil
}
