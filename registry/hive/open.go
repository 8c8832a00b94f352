package hive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Hive is a parsed registry hive. It is safe for concurrent use: reads
// (lookups, listings, value data) share h.mu and run in parallel; the
// decoding they do on first use of a key is serialised by h.dec, and the
// pages a lazy hive fills by its lazyBins lock. Edits and Serialize take
// h.mu exclusively. Lock order: mu, dec, lazy, probMu.
type Hive struct {
	mu     sync.RWMutex
	dec    sync.Mutex
	probMu sync.Mutex

	name       string // for error messages
	bb         baseBlock
	data       []byte    // the hive bins data, after log replay
	lazy       *lazyBins // set while data is filled from the file on demand
	limit      uint32    // bytes of data whose hbin headers are sound
	root       *Key
	secs       map[uint32]*Security
	owner      map[uint32]*Key // nk cell -> parent, for keys decoded so far
	problems   []error
	modified   bool
	edits      uint64  // edits so far: Saved clears modified only if none came after the save
	maxSeq     uint32  // highest sequence number seen in the hive and its logs
	unsound    error   // why the hive must not be written (a dirty hive no log repairs)
	logErrs    []error // logs set aside at open, and why
	replay     Replay
	seenFormat LogFormat // format of the logs present, replayed or not
	dirtyKeys  []*Key    // keys edits touched, in order; for an in-place save
	secEdited  bool      // SetSecurity was used: only Serialize writes new sk cells
	diskMoved  bool      // an in-place save changed the file under the model: the next save is whole
}

// Replay says what log replay did when the hive was opened.
type Replay struct {
	Dirty   bool      // the base block said the hive was dirty
	Format  LogFormat // the format of the log(s) used, LogNone if none
	Entries int       // new format: log entries applied
	Pages   int       // dirty pages applied (new format: as listed; old: 512 bytes each)
	// RecoveredBaseBlock is set when the primary's base block had a bad
	// checksum and was rebuilt from a log.
	RecoveredBaseBlock bool
	// Notes says where a log's entries stopped passing their checks
	// (remnants of older writes are normal past the last entry).
	Notes []string
}

// LogFormat is a transaction log's format.
type LogFormat int

// Log formats.
const (
	LogNone LogFormat = iota
	LogOld            // Vista/7: base block, DIRT bitmap, dirty pages
	LogNew            // Windows 8.1+: base block, HvLE entries
)

// Open reads the hive file at path and the logs beside it (path.LOG1,
// path.LOG2 and path.LOG, matched case-insensitively as Windows writes
// SYSTEM.LOG1 beside SYSTEM), replaying them if the hive is dirty.
func Open(path string) (*Hive, error) {
	base, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hive %s: %w", path, err)
	}
	logs, err := readLogs(path)
	if err != nil {
		return nil, err
	}
	h, err := parse(base, logs)
	if err != nil {
		return nil, fmt.Errorf("hive %s: %w", path, err)
	}
	h.name = path
	return h, nil
}

// LogPaths lists the transaction logs present beside a hive file, in the
// order .LOG1, .LOG2, .LOG.
func LogPaths(path string) []string {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, suffix := range []string{".LOG1", ".LOG2", ".LOG"} {
		for _, e := range ents {
			if strings.EqualFold(e.Name(), base+suffix) && e.Type().IsRegular() {
				out = append(out, filepath.Join(dir, e.Name()))
				break
			}
		}
	}
	return out
}

func readLogs(path string) ([]Log, error) {
	var logs []Log
	for _, p := range LogPaths(path) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("hive log %s: %w", p, err)
		}
		logs = append(logs, Log{Name: filepath.Base(p), Data: b})
	}
	return logs, nil
}

// Parse reads a hive from its bytes and its logs (in the order .LOG1,
// .LOG2, .LOG; empty logs are skipped). The base slice may be modified by
// the replay.
func Parse(base []byte, logs ...[]byte) (*Hive, error) {
	h, err := parse(base, namedLogs(logs))
	if err != nil {
		return nil, fmt.Errorf("hive: %w", err)
	}
	return h, nil
}

func parse(base []byte, logs []Log) (*Hive, error) {
	if len(base) < baseBlockSize {
		return nil, fmt.Errorf("file of %d bytes is shorter than a base block: %w", len(base), ErrCorrupt)
	}
	h := &Hive{secs: make(map[uint32]*Security), name: "hive"}
	if err := h.recover(base, logs); err != nil {
		return nil, err
	}
	limit, err := checkBins(h.data)
	h.limit = limit
	if err != nil {
		h.problem(err)
	}
	root, err := h.parseKey(h.bb.root, nil)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	h.root = root
	return h, nil
}

// problem records a defect found while reading that does not stop reading.
func (h *Hive) problem(err error) {
	h.probMu.Lock()
	defer h.probMu.Unlock()
	if len(h.problems) < 100 {
		h.problems = append(h.problems, err)
	}
}

// Problems lists defects met so far (bad hbin headers, unreadable security
// cells). A hive with problems can be read but not serialized. A hive
// opened with ParseReaderAt finds defects of its hive bins as it reads them.
func (h *Hive) Problems() []error {
	h.probMu.Lock()
	defer h.probMu.Unlock()
	return append([]error(nil), h.problems...)
}

// ReadOnly says why the hive must not be changed, or nil: a dirty hive
// that no log could repair is read as its primary file holds it, which may
// lack the last writes or hold half of one, so nothing may be built on it
// (Windows would not load it for writing either). The error wraps
// ErrDirty and names each log and why it could not be used.
func (h *Hive) ReadOnly() error { return h.unsound }

// Root is the hive's root key.
func (h *Hive) Root() *Key { return h.root }

// Lookup finds a key by its backslash-separated path below the root.
func (h *Hive) Lookup(path string) (*Key, error) { return h.root.Lookup(path) }

// Replayed says what log replay did at open.
func (h *Hive) Replayed() Replay { return h.replay }

// Modified says whether the hive has been edited since it was opened.
// Unchanged hives should never be written back.
func (h *Hive) Modified() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.modified
}

// SerializeForSave is Serialize, also returning a mark of the edits it
// holds: pass it to Saved once the bytes are safely written.
func (h *Hive) SerializeForSave() ([]byte, uint64, error) {
	h.mu.Lock()
	edits := h.edits
	h.mu.Unlock()
	// An edit between the two locks makes the mark stale, which only
	// costs one more save later.
	data, err := h.Serialize()
	return data, edits, err
}

// Saved marks the hive unmodified when no edit came after the save whose
// mark is given: an edit made while the bytes were being written stays
// modified and is written by the next save, never dropped.
func (h *Hive) Saved(mark uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.edits == mark {
		h.modified = false
	}
}

// Version is the hive format's minor version (3 to 6).
func (h *Hive) Version() (major, minor uint32) { return h.bb.major, h.bb.minor }

// errorsJoin joins problems for a message.
func errorsJoin(errs []error) error { return errors.Join(errs...) }
