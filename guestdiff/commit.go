package guestdiff

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk"
)

// MaxListed bounds the changes a commit's history record lists; the
// counts cover every change.
const MaxListed = 10000

// maxCompared bounds the bytes a commit's summary reads to compare files
// whose size stayed but whose mtime moved (past it they count as changed).
const maxCompared = 2 << 30

// ErrBudget means the summary ran out of its time budget.
var ErrBudget = errors.New("the time budget for the summary ran out")

// limits bound one comparison.
type limits struct {
	deadline   time.Time // zero: none
	maxBytes   int64     // bytes sameBytes may read; 0: no bound
	spent      int64
	sameVolume bool // a and b are one volume before and after a commit
	// changed is what the commit writes, when changesKnown (pruned.go)
	changed      []txn.Extent
	changesKnown bool
	// what the pruning did: volumes walked pruned, names skipped,
	// directories listed narrowed
	pruned, skipped, narrowed int
}

func (l *limits) check() error {
	if !l.deadline.IsZero() && time.Now().After(l.deadline) {
		return ErrBudget
	}
	return nil
}

// spend takes n bytes from the budget, false when it has not that many.
func (l *limits) spend(n int64) bool {
	if l.maxBytes > 0 && l.spent+n > l.maxBytes {
		return false
	}
	l.spent += n
	return true
}

// Commit is the txn.GuestDiffer: what a commit of image changes in the
// guest, from its virtual disk before (the image as its files hold it)
// and after (the commit's overlay). It gives up with ErrBudget at
// deadline.
func Commit(image string, before, after vdisk.Disk, deadline time.Time) (txn.GuestRecord, error) {
	a, err := mount.OpenDisk(image, before)
	if err != nil {
		return txn.GuestRecord{}, fmt.Errorf("the guest before the commit: %w", err)
	}
	defer a.Close()
	b, err := mount.OpenDisk(image, after)
	if err != nil {
		return txn.GuestRecord{}, fmt.Errorf("the guest after the commit: %w", err)
	}
	defer b.Close()
	lim := &limits{deadline: deadline, maxBytes: maxCompared, sameVolume: true}
	if x, ok := after.(interface{ Extents() []txn.Extent }); ok {
		lim.changed, lim.changesKnown = x.Extents(), true
	}
	cs, err := compare(a, b, lim)
	if err != nil {
		return txn.GuestRecord{}, err
	}
	return Record(cs)
}

// Record is what a history keeps of cs: the counts of all of them and
// the first MaxListed.
func Record(cs []Change) (txn.GuestRecord, error) {
	files, values := Summary(cs)
	g := txn.GuestRecord{Summary: txn.GuestSummary{Files: files, Values: values}}
	if len(cs) > MaxListed {
		g.Summary.Omitted = len(cs) - MaxListed
		cs = cs[:MaxListed]
	}
	if cs == nil {
		cs = []Change{}
	}
	data, err := json.Marshal(cs)
	if err != nil {
		return txn.GuestRecord{}, err
	}
	g.Changes = data
	return g, nil
}

// Recorded reads back the changes a history record lists.
func Recorded(h txn.HistoryCommit) ([]Change, error) {
	var cs []Change
	if err := json.Unmarshal(h.Changes, &cs); err != nil {
		return nil, fmt.Errorf("commit %d's recorded changes: %w", h.ID, err)
	}
	return cs, nil
}
