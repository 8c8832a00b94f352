package txn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// What a commit changed inside the guest is computed inside the commit,
// once its journal is sealed and before a byte of it is applied: the
// image's files still hold the old guest, the overlay the new one. The
// result goes into a pending record, written durably before the apply
// starts, so that a crash anywhere after the seal leaves the commit and
// its record together: Recover rolls the commit forward and the manifest
// takes the pending record. A pending record is bound to its journal by a
// SHA-256 of the journal's first bytes (they hold the journal's creation
// time to the nanosecond), never by being the newest file.
//
// The summary never fails a commit: an error, a panic in a guest reader,
// or the time budget running out are recorded as "changes unknown:
// <reason>" and the commit goes on.

// FaultGuestComputed is the fault point between the guest summary being
// computed and its pending record being written (the journal is sealed).
const FaultGuestComputed = "history-guest"

// DefaultGuestBudget bounds the time a commit spends on its guest summary.
const DefaultGuestBudget = 60 * time.Second

// maxPrefix is how much of a journal's start binds a pending record to it.
const maxPrefix = 4096

// GuestRecord is what a commit changed in the guest.
type GuestRecord struct {
	Summary GuestSummary
	// Changes is the list of changes as JSON (a guestdiff.Change array),
	// kept as it is: txn does not know guests.
	Changes json.RawMessage
}

// GuestDiffer computes what a commit changes in the guest from the
// virtual disk before it and after it; it should give up by deadline.
// Both disks are read-only views valid only during the call.
type GuestDiffer func(image string, before, after vdisk.Disk, deadline time.Time) (GuestRecord, error)

var (
	guestDiffer atomic.Pointer[GuestDiffer]
	guestBudget atomic.Int64 // nanoseconds; 0: DefaultGuestBudget, <0: off
)

// SetGuestDiffer makes this process's commits record their guest changes
// with f (the command line sets guestdiff's).
func SetGuestDiffer(f GuestDiffer) { guestDiffer.Store(&f) }

// SetGuestBudget bounds the time of each commit's guest summary; d <= 0
// turns the summary off (the commits record "changes unknown").
func SetGuestBudget(d time.Duration) {
	if d <= 0 {
		d = -1
	}
	guestBudget.Store(int64(d))
}

func budget() time.Duration {
	switch d := guestBudget.Load(); {
	case d == 0:
		return DefaultGuestBudget
	case d < 0:
		return 0
	default:
		return time.Duration(d)
	}
}

// pendingRecord is a commit's description written before its apply:
// what the manifest will say.
type pendingRecord struct {
	PrefixLen    int64           `json:"prefix_len"`
	PrefixSum    string          `json:"prefix_sha256"`
	Time         time.Time       `json:"time"`
	Note         Note            `json:"made_by"`
	Guest        *GuestSummary   `json:"guest,omitempty"`
	Changes      json.RawMessage `json:"guest_changes,omitempty"`
	GuestUnknown string          `json:"guest_unknown,omitempty"`
	Seconds      float64         `json:"guest_seconds"`
}

// unwritten keeps, by prefix sum, the pending records this process could
// not write to disk, so that its own promote still finds them.
var unwritten sync.Map

// recordGuest computes the guest changes of the commit whose sealed
// journal is at JournalPath(image) and writes its pending record. The
// caller holds o.mu. It never fails: what goes wrong is logged and
// recorded.
func recordGuest(image string, o *Overlay) {
	start := time.Now()
	sum, n, err := journalPrefix(JournalPath(image), 0)
	if err != nil {
		slog.Warn("history: the commit's record cannot be bound to its journal", "image", image, "err", err)
		return
	}
	p := &pendingRecord{PrefixLen: n, PrefixSum: sum, Time: start.UTC(), Note: currentNote()}
	if g, err := computeGuest(image, o); err != nil {
		p.GuestUnknown = "changes unknown: " + err.Error()
		slog.Warn("history: guest changes not recorded", "image", image, "err", err)
	} else {
		p.Guest, p.Changes = &g.Summary, g.Changes
	}
	p.Seconds = time.Since(start).Seconds()
	fault(FaultGuestComputed)
	if err := writePending(image, p); err != nil {
		slog.Warn("history: pending record not written", "image", image, "err", err)
		unwritten.Store(image+"\x00"+sum, p)
	}
}

// computeGuest runs the guest differ over the base (old) and the overlay
// (new), turning a panic into an error.
func computeGuest(image string, o *Overlay) (g GuestRecord, err error) {
	f := guestDiffer.Load()
	if f == nil {
		return g, errors.New("this program reads no guest file systems")
	}
	b := budget()
	if b == 0 {
		return g, errors.New("guest summaries are turned off")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading the guest failed: %v", r)
		}
	}()
	return (*f)(image, o.base, lockedOverlay{o}, time.Now().Add(b))
}

// journalPrefix hashes the first n bytes of the journal or record at
// path (n 0: up to maxPrefix), which identify it for its pending record.
func journalPrefix(path string, n int64) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if n == 0 {
		fi, err := f.Stat()
		if err != nil {
			return "", 0, err
		}
		n = min(fi.Size(), maxPrefix)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:]), n, nil
}

func pendingPath(image, sum string) string {
	return filepath.Join(HistoryDir(image), "pending-"+sum[:16]+".json")
}

func writePending(image string, p *pendingRecord) error {
	if err := os.MkdirAll(HistoryDir(image), 0o755); err != nil {
		return fmt.Errorf("txn: history of %s: %w", image, err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("txn: history of %s: %w", image, err)
	}
	return writePendingFile(pendingPath(image, p.PrefixSum), data)
}

// writePendingFile writes a pending record; tests make it fail (a full
// disk, an I/O error).
var writePendingFile = writeFileDurably

// pendingFor finds the pending record of the journal or undo record at
// rpath, nil when there is none (the commit was finished by a Recover in
// another process after a crash before its record was written, or made
// by an offvm without records).
func pendingFor(image, rpath string) (*pendingRecord, string) {
	des, _ := os.ReadDir(HistoryDir(image))
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), "pending-") || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		path := filepath.Join(HistoryDir(image), de.Name())
		var p pendingRecord
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &p)
		}
		if err != nil || p.PrefixLen <= 0 || p.PrefixLen > maxPrefix {
			continue
		}
		if sum, _, err := journalPrefix(rpath, p.PrefixLen); err == nil && sum == p.PrefixSum {
			return &p, path
		}
	}
	var found *pendingRecord
	unwritten.Range(func(k, v any) bool {
		p := v.(*pendingRecord)
		if k.(string) != image+"\x00"+p.PrefixSum {
			return true
		}
		if sum, _, err := journalPrefix(rpath, p.PrefixLen); err == nil && sum == p.PrefixSum {
			found = p
			return false
		}
		return true
	})
	return found, ""
}

// takePending fills a new manifest from its commit's pending record.
func (c *HistoryCommit) takePending(p *pendingRecord) {
	if p == nil {
		c.Note = Note{Command: "unknown"}
		c.GuestUnknown = "changes unknown: the commit was finished by recovery after a crash, before its record was written"
		return
	}
	c.Time, c.Note, c.Guest, c.Changes, c.GuestUnknown, c.GuestSeconds = p.Time, p.Note, p.Guest, p.Changes, p.GuestUnknown, p.Seconds
}

// dropPending removes every pending record: called once the newest
// commit has its manifest, when none of them can describe a commit still
// to be promoted.
func dropPending(image string) {
	des, _ := os.ReadDir(HistoryDir(image))
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "pending-") {
			// no sync: a pending record a crash brings back matches no
			// record, and the next commit removes it again
			p := filepath.Join(HistoryDir(image), de.Name())
			if err := os.Remove(p); err != nil {
				slog.Warn("history: stale pending record", "image", image, "err", err)
			}
			traceRemove(p)
		}
	}
	unwritten.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), image+"\x00") {
			unwritten.Delete(k)
		}
		return true
	})
}

// lockedOverlay reads an overlay whose lock the caller holds: the new
// guest, during the commit.
type lockedOverlay struct{ o *Overlay }

func (l lockedOverlay) ReadAt(p []byte, off int64) (int, error) { return l.o.readAt(p, off) }
func (l lockedOverlay) WriteAt([]byte, int64) (int, error)      { return 0, vdisk.ErrReadOnly }
func (l lockedOverlay) Size() int64                             { return l.o.size }
func (l lockedOverlay) Info() vdisk.Info                        { return l.o.base.Info() }
func (l lockedOverlay) Flush() error                            { return nil }
func (l lockedOverlay) Close() error                            { return nil }

// Extent is a range of the virtual disk's bytes.
type Extent struct{ Off, Len int64 }

// Extents lists the ranges of the virtual disk the commit changes (the
// overlay's blocks, merged, in disk order), so that the summary can
// compare only the files those bytes hold (guestdiff/pruned.go). A block
// written with the bytes it had is listed too: more, never less.
func (l lockedOverlay) Extents() []Extent {
	o := l.o
	idxs := make([]int64, 0, len(o.blocks))
	for i := range o.blocks {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	var out []Extent
	for _, i := range idxs {
		off, n := i*BlockSize, int64(o.blockLen(i))
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == off {
			out[k].Len += n
			continue
		}
		out = append(out, Extent{off, n})
	}
	return out
}
