package txn

import (
	"errors"
	"hash/crc32"
	"path/filepath"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// The journal is a stream of checksummed records after a fixed header:
//
//	header  "OFFVMJNL" | version u32 | flags u32 | created i64 | reserved u32 | crc32c u32
//	record  tag [4]byte | payload length u32 | crc32c(tag, length, payload) u32 | payload
//
//	FILE  id u32 | old length i64 | new length i64 | path length u16 | path [| old mtime ns i64, version 2]
//	UNDO  file id u32 | offset i64 | new n u32 | old n u32 | xxh64 of the new bytes u64 | old bytes
//	REGN  file id u32 | offset i64 | new n u32 | old n u32 | new bytes | old bytes
//	COMT  files u32 | regions u64 | new bytes u64 | sha256 of every byte before this record
//	APLD  files u32 | per file: size i64 | mtime ns i64
//
// All integers are little-endian. FILE records come first, ids 0, 1, ...;
// paths are relative to the image's directory. A region's new bytes
// replace the file's n bytes at offset on commit; its old bytes are what
// was there (fewer when the region runs past the old length; none for a
// region past the new length, kept only to undo a shrink). COMT seals the
// journal. APLD, appended after the commit was applied and synced, marks
// it done and records what the files looked like then, so Rollback can
// tell whether they changed since.
//
// Version 2 (undoVersion), what Commit writes, is an undo journal: its
// UNDO records keep only the new bytes' length and hash (the new bytes go
// straight into place after the seal); APLD is its commit point, and a
// sealed journal without one is undone. Version 1 (redoVersion), what
// offvm wrote before, is a redo journal: its REGN records carry the new
// bytes, COMT is its commit point, and a sealed journal without APLD is
// replayed. Recover, Rollback and the history read both, so that records
// left by an older offvm keep working. See doc.go for why both are safe.
const (
	journalMagic  = "OFFVMJNL"
	redoVersion   = 1
	undoVersion   = 2
	headerSize    = 32
	recHeaderSize = 12
	maxChunk      = 1 << 20 // bytes of new or of old data in one region
	maxPayload    = 2*maxChunk + 20
	maxFiles      = 1024
	maxPathLen    = 4096
	maxFileLen    = 1 << 52 // 4 PiB, beyond any host file
	regnFixed     = 20
	undoFixed     = regnFixed + 8
	comtSize      = 4 + 8 + 8 + 32
)

var (
	tagFile   = [4]byte{'F', 'I', 'L', 'E'}
	tagRegion = [4]byte{'R', 'E', 'G', 'N'}
	// tagRegionZ is a region whose old bytes are all zeros (a fresh raw
	// image's free space): they are not stored, halving such journals.
	tagRegionZ = [4]byte{'R', 'E', 'G', 'Z'}
	// tagUndo and tagUndoZ are the regions of an undo journal, with their
	// old bytes stored, or all zeros and not stored.
	tagUndo    = [4]byte{'U', 'N', 'D', 'O'}
	tagUndoZ   = [4]byte{'U', 'N', 'D', 'Z'}
	tagCommit  = [4]byte{'C', 'O', 'M', 'T'}
	tagApplied = [4]byte{'A', 'P', 'L', 'D'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrIncomplete means a journal has no valid commit record: it was being
// written when the process stopped, and none of it was applied.
var ErrIncomplete = errors.New("journal incomplete")

// ErrNoUndo means an image has no undo record: nothing to roll back.
var ErrNoUndo = errors.New("no committed change to roll back")

// ErrImageChanged means the image changed since its last commit, so the
// undo record no longer describes it and Rollback refuses.
var ErrImageChanged = errors.New("image changed since its last commit")

// jfile is one host file a journal changes.
type jfile struct {
	Path           string // relative to the image's directory
	OldLen, NewLen int64
	OldMtimeNs     int64 // undo journals: restored by an undo (0: unknown)
}

// region is one region record. Its slices are valid only during a
// callback.
type region struct {
	File int
	Off  int64
	// New is a redo record's new bytes. An undo record stores only their
	// length and hash (Sum), and New is then that many zero bytes, which
	// say how long the region is and nothing else: nothing writes them
	// (applyJournal refuses to redo an undo journal), and eachCommitted
	// compares the file's bytes with Sum instead.
	New, Old []byte
	Undo     bool   // an undo record: New is a placeholder, Sum its hash
	Sum      uint64 // xxh64 of the new bytes, in an undo record
}

// zeroChunk backs the New placeholder of undo records: never written.
var zeroChunk = make([]byte, maxChunk)

// newSum is the hash an undo record keeps of a region's new bytes: what
// Rollback checks the image still holds. xxh64 because it runs at memory
// speed over every byte a commit writes; it guards against changes made
// outside offvm (after the length and mtime checks), not against forgery,
// which the journal's place beside the image rules out anyway.
func newSum(p []byte) uint64 { return xxhash.Sum64(p) }

// fileStat is a file's state right after a commit was applied.
type fileStat struct {
	Size, MtimeNs int64
}

// journal is what verifying a journal file learnt.
type journal struct {
	Undo      bool // version 2: an undo journal (see above)
	Files     []jfile
	Regions   int64
	NewBytes  int64
	CommitEnd int64      // offset just past the COMT record
	Sum       [32]byte   // the COMT SHA-256: names the commit in the history
	Applied   []fileStat // nil when there is no valid APLD record
}

// validRelPath accepts only paths that stay inside the image's directory:
// a journal, even a forged one, can write nowhere else.
func validRelPath(p string) bool {
	if p == "" || p == "." || filepath.IsAbs(p) || filepath.Clean(p) != p {
		return false
	}
	if p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return false
	}
	return !IsSidecar(p)
}

func recordCRC(tag [4]byte, hdrLen []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, tag[:])
	c = crc32.Update(c, castagnoli, hdrLen)
	return crc32.Update(c, castagnoli, payload)
}
