package txn

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// journalWriter writes a journal sequentially, hashing every byte for the
// commit record.
type journalWriter struct {
	f         *os.File
	bw        *bufio.Writer
	sum       hash.Hash
	w         io.Writer // bw and sum
	files     int
	regions   int64
	newBytes  int64
	off       int64
	pr        *progress
	undo      bool      // an undo journal (version 2): new bytes not stored
	todo      []pending // an undo journal's regions, to write in place
	jfiles    []jfile   // the FILE records, by id
	src       []*staged // where each file's new bytes are, by id (Commit)
	commitEnd int64     // offset just past the COMT record, once sealed
}

// pending is a region of an undo journal whose new bytes are still to be
// written into place, from the stager.
type pending struct {
	file int
	off  int64
	n    int
}

// createJournal creates the journal file, an undo journal (what Commit
// writes) or a redo one (what an older offvm wrote; tests make them);
// O_EXCL because a journal that exists belongs to a commit Recover has
// not dealt with.
func createJournal(path string, undo bool) (*journalWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("txn: create journal: %w", err)
	}
	traceCreate(path)
	j := &journalWriter{f: f, bw: bufio.NewWriterSize(traceWriter(f), maxRun), sum: sha256.New(), undo: undo}
	j.w = io.MultiWriter(j.bw, j.sum)
	var h [headerSize]byte
	copy(h[:8], journalMagic)
	version := uint32(redoVersion)
	if undo {
		version = undoVersion
	}
	binary.LittleEndian.PutUint32(h[8:], version)
	binary.LittleEndian.PutUint64(h[16:], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	if err := j.write(h[:]); err != nil {
		j.abort()
		return nil, err
	}
	return j, nil
}

func (j *journalWriter) write(p []byte) error {
	if _, err := j.w.Write(p); err != nil {
		return fmt.Errorf("txn: write journal %s: %w", j.f.Name(), err)
	}
	j.off += int64(len(p))
	return nil
}

// record writes one record whose payload is the concatenation of parts.
func (j *journalWriter) record(tag [4]byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var h [recHeaderSize]byte
	copy(h[:4], tag[:])
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	c := crc32.Update(0, castagnoli, h[:8])
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	binary.LittleEndian.PutUint32(h[8:], c)
	if err := j.write(h[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if err := j.write(p); err != nil {
			return err
		}
	}
	return nil
}

// file writes a FILE record; an undo journal's also keeps the file's old
// mtime (0: unknown, not restored).
func (j *journalWriter) file(rel string, oldLen, newLen, oldMtime int64) error {
	b := make([]byte, 4+8+8+2)
	binary.LittleEndian.PutUint32(b, uint32(j.files))
	binary.LittleEndian.PutUint64(b[4:], uint64(oldLen))
	binary.LittleEndian.PutUint64(b[12:], uint64(newLen))
	binary.LittleEndian.PutUint16(b[20:], uint16(len(rel)))
	j.files++
	j.jfiles = append(j.jfiles, jfile{Path: rel, OldLen: oldLen, NewLen: newLen, OldMtimeNs: oldMtime})
	if !j.undo {
		return j.record(tagFile, b, []byte(rel))
	}
	var mt [8]byte
	binary.LittleEndian.PutUint64(mt[:], uint64(oldMtime))
	return j.record(tagFile, b, []byte(rel), mt[:])
}

// region journals one region: in an undo journal its old bytes and the
// hash of its new ones (which it remembers, to write them in place once
// the journal is sealed), in a redo journal both.
func (j *journalWriter) region(file int, off int64, newData, oldData []byte) error {
	var b [undoFixed]byte
	binary.LittleEndian.PutUint32(b[:], uint32(file))
	binary.LittleEndian.PutUint64(b[4:], uint64(off))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(newData)))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(oldData)))
	j.regions++
	j.newBytes += int64(len(newData))
	j.pr.add(len(newData))
	zeroOld := len(oldData) > 0 && vdisk.IsZero(oldData)
	if zeroOld {
		oldData = nil
	}
	var err error
	if j.undo {
		tag := tagUndo
		if zeroOld {
			tag = tagUndoZ
		}
		binary.LittleEndian.PutUint64(b[regnFixed:], newSum(newData))
		err = j.record(tag, b[:], oldData)
		if len(newData) > 0 {
			j.todo = append(j.todo, pending{file: file, off: off, n: len(newData)})
		}
	} else {
		tag := tagRegion
		if zeroOld {
			tag = tagRegionZ
		}
		err = j.record(tag, b[:regnFixed], newData, oldData)
	}
	if err != nil {
		return err
	}
	if j.regions == 1 && faultIs(FaultJournalPartial) {
		j.bw.Flush() // let the test see a journal cut after its first region
		fault(FaultJournalPartial)
	}
	return nil
}

// commit seals the journal and makes it durable, file and name both.
func (j *journalWriter) commit() error {
	b := make([]byte, comtSize)
	binary.LittleEndian.PutUint32(b, uint32(j.files))
	binary.LittleEndian.PutUint64(b[4:], uint64(j.regions))
	binary.LittleEndian.PutUint64(b[12:], uint64(j.newBytes))
	copy(b[20:], j.sum.Sum(nil))
	if err := j.record(tagCommit, b); err != nil {
		return err
	}
	j.commitEnd = j.off
	if err := j.bw.Flush(); err != nil {
		return fmt.Errorf("txn: write journal %s: %w", j.f.Name(), err)
	}
	if err := fsync(j.f); err != nil {
		return fmt.Errorf("txn: sync journal %s: %w", j.f.Name(), err)
	}
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("txn: close journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// abort closes and removes an unsealed journal.
func (j *journalWriter) abort() {
	j.f.Close()
	os.Remove(j.f.Name())
	traceRemove(j.f.Name())
}

// appendApplied replaces whatever follows the commit record (a torn
// earlier attempt) with an APLD record and syncs the journal.
func appendApplied(path string, commitEnd int64, stats []fileStat) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("txn: open journal to mark it applied: %w", err)
	}
	defer f.Close()
	b := make([]byte, 4+16*len(stats))
	binary.LittleEndian.PutUint32(b, uint32(len(stats)))
	for i, s := range stats {
		binary.LittleEndian.PutUint64(b[4+16*i:], uint64(s.Size))
		binary.LittleEndian.PutUint64(b[12+16*i:], uint64(s.MtimeNs))
	}
	var h [recHeaderSize]byte
	copy(h[:4], tagApplied[:])
	binary.LittleEndian.PutUint32(h[4:], uint32(len(b)))
	binary.LittleEndian.PutUint32(h[8:], recordCRC(tagApplied, h[4:8], b))
	if err := f.Truncate(commitEnd); err != nil {
		return fmt.Errorf("txn: truncate journal %s: %w", path, err)
	}
	traceTruncate(path, commitEnd)
	rec := append(h[:], b...)
	if _, err := f.WriteAt(rec, commitEnd); err != nil {
		return fmt.Errorf("txn: mark journal %s applied: %w", path, err)
	}
	traceWrite(path, commitEnd, rec)
	if err := fsync(f); err != nil {
		return fmt.Errorf("txn: sync journal %s: %w", path, err)
	}
	return nil
}
