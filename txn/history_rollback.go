package txn

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Fault points of RollbackTo, in the order it passes them.
const (
	FaultRollbackToPlanned = "rollback-to-planned" // plan written, nothing restored
	FaultRollbackToRecord  = "rollback-to-record"  // half of the first record's old bytes restored
	FaultRollbackToBetween = "rollback-to-between" // first record restored, the others not
	FaultRollbackToApplied = "rollback-to-applied" // all restored, plan marked done, records not removed
)

// RollbackToFaults lists RollbackTo's fault points.
var RollbackToFaults = []string{FaultRollbackToPlanned, FaultRollbackToRecord, FaultRollbackToBetween, FaultRollbackToApplied}

// ErrHistoryMissing means a commit to undo has no undo record any more
// (dropped by --keep, or lost), so RollbackTo cannot reach it.
var ErrHistoryMissing = errors.New("undo record missing")

// rollbackPlan is a rollback --to in progress: the undo records to apply,
// newest first, as paths relative to the image's directory.
type rollbackPlan struct {
	Target  int      `json:"target"`
	IDs     []int    `json:"ids"`
	Records []string `json:"records"`
	Seals   []string `json:"seals"`
	Done    bool     `json:"done"` // every record applied and synced
}

func planPath(image string) string { return filepath.Join(HistoryDir(image), "rollback-to.json") }

// RollbackToPath is where a rollback --to in progress keeps its plan:
// while it exists the image is half rolled back, and only Recover may
// open it.
func RollbackToPath(image string) string { return planPath(image) }

// RollbackTo undoes commit id of image and every later one, byte for
// byte, as one transaction: the plan (which records, in which order) is
// written durably before the first old byte is, and Recover finishes a
// plan it finds. Undo records write absolute bytes and lengths, so
// applying the whole chain again from the start after a crash anywhere
// gives the same image. It refuses, writing nothing, when a record in the
// range is missing, when the chain of records does not join up, or when
// the image no longer holds the newest commit's bytes (it changed outside
// offvm). The caller holds the image's Lock.
func RollbackTo(image string, id int) ([]int, error) {
	if _, err := Recover(image); err != nil {
		return nil, err
	}
	chain, err := chainTo(image, id)
	if err != nil {
		return nil, err
	}
	js, err := checkChain(image, chain)
	if err != nil {
		return nil, err
	}
	p := &rollbackPlan{Target: id}
	dir := filepath.Dir(image)
	for i, c := range chain {
		rel, err := filepath.Rel(dir, c.record)
		if err != nil {
			return nil, fmt.Errorf("txn: rollback %s: %w", image, err)
		}
		p.IDs, p.Records = append(p.IDs, c.ID), append(p.Records, rel)
		p.Seals = append(p.Seals, hex.EncodeToString(js[i].Sum[:]))
	}
	if err := writePlan(image, p); err != nil {
		return nil, err
	}
	fault(FaultRollbackToPlanned)
	return p.IDs, finishRollbackTo(image, p)
}

// chainTo lists the commits from the newest down to id that are not
// rolled back yet, refusing when one of them has no record.
func chainTo(image string, id int) ([]HistoryCommit, error) {
	cs, err := History(image)
	if err != nil {
		return nil, err
	}
	var chain []HistoryCommit
	found := false
	for _, c := range cs {
		if c.ID < id {
			break
		}
		if c.RolledBack != nil {
			if c.ID == id {
				return nil, fmt.Errorf("txn: rollback %s to commit %d: it was rolled back already", image, id)
			}
			continue
		}
		if !c.Undoable() {
			return nil, fmt.Errorf("txn: rollback %s to commit %d: commit %d (%s) can no longer be undone: %w",
				image, id, c.ID, c.Note.Command, ErrHistoryMissing)
		}
		chain = append(chain, c)
		found = found || c.ID == id
	}
	if !found {
		return nil, fmt.Errorf("txn: rollback %s: no commit %d in its history (see offvm log): %w", image, id, ErrNoUndo)
	}
	return chain, nil
}

// checkChain verifies every record and that the image still is what the
// newest commit left: its files' lengths and committed bytes (and, for
// the record at <image>.offvm-undo, their mtimes). Each older record must
// leave every file at the length the next one starts from.
func checkChain(image string, chain []HistoryCommit) ([]*journal, error) {
	js := make([]*journal, len(chain))
	for i, c := range chain {
		j, err := verifyJournal(c.record)
		if err != nil {
			return nil, fmt.Errorf("txn: rollback %s: undo record of commit %d unreadable: %w", image, c.ID, err)
		}
		if j.Applied == nil {
			return nil, fmt.Errorf("txn: rollback %s: undo record %s was never marked applied", image, c.record)
		}
		if c.Seal != "" && c.Seal != hex.EncodeToString(j.Sum[:]) {
			return nil, fmt.Errorf("txn: rollback %s: %s is not the undo record of commit %d (another seal): %w",
				image, c.record, c.ID, ErrHistoryMissing)
		}
		js[i] = j
	}
	if err := checkNewest(image, chain[0].record, js[0]); err != nil {
		return nil, err
	}
	for i := 1; i < len(js); i++ {
		if err := checkJoin(image, chain[i].ID, js[i], chain[i-1].ID, js[i-1]); err != nil {
			return nil, err
		}
	}
	return js, checkOlder(image, chain)
}

// checkOlder checks each older record's committed bytes against the
// image as the later records' undo leaves it (a View, in memory): a
// change outside offvm between two commits would otherwise mix old bytes
// with foreign ones. When the view outgrows its memory bound the check
// stops there, with a warning: the lengths were checked already.
func checkOlder(image string, chain []HistoryCommit) error {
	v := &View{dir: filepath.Dir(image), files: map[string]*viewFile{}}
	defer v.Close()
	var held int64
	for i := 1; i < len(chain); i++ {
		if err := v.undo(chain[i-1].record, &held); err != nil {
			if held > maxViewBytes {
				slog.Warn("history: older commits' bytes not checked, too large", "image", image, "err", err)
				return nil
			}
			return fmt.Errorf("txn: rollback %s: %w", image, err)
		}
		if err := v.holdsCommitted(image, chain[i]); err != nil {
			return err
		}
	}
	return nil
}

// holdsCommitted checks that the view holds commit c's new bytes.
func (v *View) holdsCommitted(image string, c HistoryCommit) error {
	j, err := verifyJournal(c.record)
	if err != nil {
		return err
	}
	vfs := make([]*viewFile, len(j.Files))
	for i, jf := range j.Files {
		if vfs[i], err = v.file(jf.Path); err != nil {
			return fmt.Errorf("txn: rollback %s: %w", image, err)
		}
	}
	return eachCommitted(c.record, func(r region, cur []byte) error {
		n, _ := vfs[r.File].readAt(cur, r.Off)
		if n != len(cur) || !bytes.Equal(cur, r.New) {
			return fmt.Errorf("txn: rollback %s: %s at %d no longer holds the bytes of commit %d once the later ones are undone (the image changed outside offvm in between): %w",
				image, j.Files[r.File].Path, r.Off, c.ID, ErrImageChanged)
		}
		return nil
	})
}

// checkNewest checks the image against the newest record: the full check
// of Rollback for <image>.offvm-undo; for an archived record (the commits
// after it were rolled back, which changed the mtimes) lengths and bytes.
func checkNewest(image, rpath string, j *journal) error {
	if rpath == UndoPath(image) {
		return checkUnchanged(image, rpath, j)
	}
	return checkFiles(image, rpath, j, func(i int, f *os.File) error {
		jf := j.Files[i]
		if fi, err := f.Stat(); err != nil || fi.Size() != jf.NewLen {
			return fmt.Errorf("txn: rollback %s: %s is not %d bytes, as its newest commit left it: %w", image, jf.Path, jf.NewLen, ErrImageChanged)
		}
		return nil
	})
}

// checkJoin refuses a chain where the older record leaves a file at
// another length than the newer one found it: something else wrote in
// between, and the older old bytes would mix with foreign ones.
func checkJoin(image string, oldID int, older *journal, newID int, newer *journal) error {
	for _, nf := range newer.Files {
		for _, of := range older.Files {
			if of.Path == nf.Path && of.NewLen != nf.OldLen {
				return fmt.Errorf("txn: rollback %s: commit %d left %s at %d bytes, commit %d found it at %d: %w",
					image, oldID, of.Path, of.NewLen, newID, nf.OldLen, ErrImageChanged)
			}
		}
	}
	return nil
}

// writePlan writes the plan durably.
func writePlan(image string, p *rollbackPlan) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("txn: rollback %s: %w", image, err)
	}
	return writeFileDurably(planPath(image), data)
}

// finishRollbackTo applies every record of the plan, newest first, marks
// the plan done, then drops the records and the plan.
func finishRollbackTo(image string, p *rollbackPlan) error {
	if !p.Done {
		for i, rel := range p.Records {
			point := ""
			if i == 0 {
				point = FaultRollbackToRecord
			}
			if _, _, err := applyJournal(image, filepath.Join(filepath.Dir(image), rel), true, point, nil); err != nil {
				return fmt.Errorf("txn: roll back %s to commit %d (the next offvm command retries): %w", image, p.Target, err)
			}
			if i == 0 {
				fault(FaultRollbackToBetween)
			}
		}
		p.Done = true
		if err := writePlan(image, p); err != nil {
			return err
		}
		fault(FaultRollbackToApplied)
	}
	for i, rel := range p.Records {
		var seal [32]byte
		if b, err := hex.DecodeString(p.Seals[i]); err == nil && len(b) == 32 {
			copy(seal[:], b)
			markRolledBack(image, seal)
		}
		if err := removeDurably(filepath.Join(filepath.Dir(image), rel)); err != nil {
			return err
		}
	}
	return removeDurably(planPath(image))
}

// recoverRollbackTo finishes a rollback --to that a crash interrupted.
func recoverRollbackTo(image string) (bool, error) {
	data, err := os.ReadFile(planPath(image))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("txn: recover %s: %w", image, err)
	}
	var p rollbackPlan
	if err := json.Unmarshal(data, &p); err != nil || len(p.Records) != len(p.Seals) || len(p.Records) != len(p.IDs) {
		return true, fmt.Errorf("txn: recover %s: rollback plan %s unreadable (%v): %w", image, planPath(image), err, ErrRecoverRefused)
	}
	for _, rel := range p.Records {
		if !planRecordOK(image, rel) {
			return true, fmt.Errorf("txn: recover %s: rollback plan names %q, not one of its undo records: %w", image, rel, ErrRecoverRefused)
		}
	}
	return true, finishRollbackTo(image, &p)
}

// planRecordOK accepts only the image's own undo records: a forged plan
// can make Recover apply nothing else.
func planRecordOK(image, rel string) bool {
	base := filepath.Base(image)
	if rel == base+UndoSuffix {
		return true
	}
	dir, file := filepath.Split(rel)
	_, ok := entryID(file, ".undo")
	return ok && strings.TrimSuffix(dir, "/") == base+HistorySuffix
}
