package txn

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// journalReader walks a journal's records, checking each one's CRC and
// hashing everything before the commit record.
type journalReader struct {
	br      *bufio.Reader
	size    int64
	off     int64
	sum     hash.Hash
	payload []byte
}

// readJournal verifies a whole journal and, when fn is not nil, calls it
// for each region in order. It reads r sequentially, holding one record at
// a time. Any fault in the records up to and including the commit record
// gives an error wrapping ErrIncomplete: such a journal must never be
// applied. fn is only ever called for a region whose own CRC holds, but
// the journal as a whole is known sound only when readJournal returns nil,
// so callers verify with fn == nil before applying anything.
func readJournal(r io.ReaderAt, size int64, fn func(region) error) (*journal, error) {
	jr := &journalReader{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), maxRun), size: size, sum: sha256.New()}
	version, err := jr.header()
	if err != nil {
		return nil, err
	}
	j := &journal{Undo: version == undoVersion}
	for {
		start := jr.off
		tag, p, err := jr.next()
		if err != nil {
			return nil, fmt.Errorf("record at %d: %v: %w", start, err, ErrIncomplete)
		}
		switch tag {
		case tagFile:
			err = j.addFile(p)
		case tagRegion, tagRegionZ:
			err = j.addRegion(p, fn, tag == tagRegionZ)
		case tagUndo, tagUndoZ:
			err = j.addUndo(p, fn, tag == tagUndoZ)
		case tagCommit:
			err = j.seal(p, jr.sum.Sum(nil))
			if err == nil {
				j.CommitEnd = jr.off
				j.Applied = jr.applied(len(j.Files))
				return j, nil
			}
		default:
			err = fmt.Errorf("unknown record %q at %d", tag[:], start)
		}
		if err != nil {
			var ce callbackError
			if errors.As(err, &ce) {
				return nil, ce.err
			}
			return nil, fmt.Errorf("record at %d: %v: %w", start, err, ErrIncomplete)
		}
	}
}

// header reads and checks the header and returns the journal's version.
func (jr *journalReader) header() (uint32, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(jr.br, h[:]); err != nil {
		return 0, fmt.Errorf("header: %v: %w", err, ErrIncomplete)
	}
	jr.sum.Write(h[:])
	jr.off = headerSize
	if string(h[:8]) != journalMagic || crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:]) {
		return 0, fmt.Errorf("bad header: %w", ErrIncomplete)
	}
	v := binary.LittleEndian.Uint32(h[8:])
	if v != redoVersion && v != undoVersion {
		return 0, fmt.Errorf("journal version %d, want %d or %d: %w", v, redoVersion, undoVersion, ErrIncomplete)
	}
	return v, nil
}

// next reads one record, checks its CRC and returns its tag and payload
// (valid until the next call). Every record but COMT goes into the hash,
// so at a COMT the hash covers exactly the bytes before it.
func (jr *journalReader) next() ([4]byte, []byte, error) {
	var tag [4]byte
	var h [recHeaderSize]byte
	if _, err := io.ReadFull(jr.br, h[:]); err != nil {
		return tag, nil, fmt.Errorf("record header: %v", err)
	}
	copy(tag[:], h[:4])
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	if n > maxPayload || n > jr.size-jr.off-recHeaderSize {
		return tag, nil, fmt.Errorf("record %q of %d bytes", tag[:], n)
	}
	if cap(jr.payload) < int(n) {
		jr.payload = make([]byte, n)
	}
	p := jr.payload[:n]
	if _, err := io.ReadFull(jr.br, p); err != nil {
		return tag, nil, fmt.Errorf("record payload: %v", err)
	}
	if recordCRC(tag, h[4:8], p) != binary.LittleEndian.Uint32(h[8:]) {
		return tag, nil, fmt.Errorf("record %q: CRC mismatch", tag[:])
	}
	jr.off += recHeaderSize + n
	if tag != tagCommit {
		jr.sum.Write(h[:])
		jr.sum.Write(p)
	}
	return tag, p, nil
}

// applied reads an optional APLD record after the commit record; a torn
// or foreign one counts as absent.
func (jr *journalReader) applied(files int) []fileStat {
	tag, p, err := jr.next()
	if err != nil || tag != tagApplied || len(p) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(p))
	if n != files || len(p) != 4+16*n {
		return nil
	}
	stats := make([]fileStat, n)
	for i := range stats {
		stats[i].Size = int64(binary.LittleEndian.Uint64(p[4+16*i:]))
		stats[i].MtimeNs = int64(binary.LittleEndian.Uint64(p[12+16*i:]))
	}
	return stats
}

func (j *journal) addFile(p []byte) error {
	if j.Regions > 0 {
		return errors.New("FILE record after regions")
	}
	if len(p) < 22 {
		return errors.New("short FILE record")
	}
	id := binary.LittleEndian.Uint32(p)
	oldLen := int64(binary.LittleEndian.Uint64(p[4:]))
	newLen := int64(binary.LittleEndian.Uint64(p[12:]))
	n := int(binary.LittleEndian.Uint16(p[20:]))
	var oldMtime int64
	if j.Undo {
		if len(p) != 22+n+8 {
			return errors.New("FILE record of an undo journal without its mtime")
		}
		oldMtime = int64(binary.LittleEndian.Uint64(p[22+n:]))
		p = p[:22+n]
	}
	switch {
	case int(id) != len(j.Files) || len(j.Files) >= maxFiles:
		return fmt.Errorf("FILE id %d out of order", id)
	case oldLen < 0 || oldLen > maxFileLen || newLen < 0 || newLen > maxFileLen:
		return fmt.Errorf("FILE lengths %d, %d out of range", oldLen, newLen)
	case len(p) != 22+n || n > maxPathLen || !validRelPath(string(p[22:])):
		return fmt.Errorf("FILE path %q not allowed", p[22:])
	}
	path := string(p[22:])
	for _, f := range j.Files {
		if f.Path == path {
			return fmt.Errorf("FILE %q twice", path)
		}
	}
	j.Files = append(j.Files, jfile{Path: path, OldLen: oldLen, NewLen: newLen, OldMtimeNs: oldMtime})
	return nil
}

// callbackError carries an error of the region callback through
// readJournal unchanged: it says nothing about the journal's soundness.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// addRegion reads a REGN record of a redo journal, or with zeroOld a REGZ
// record, whose old bytes are zeros and not stored.
func (j *journal) addRegion(p []byte, fn func(region) error, zeroOld bool) error {
	if j.Undo {
		return errors.New("REGN record in an undo journal")
	}
	if len(p) < regnFixed {
		return errors.New("short REGN record")
	}
	r, nn, on := j.regionHead(p)
	stored := on
	if zeroOld {
		stored = 0
	}
	if int64(len(p)) != regnFixed+nn+stored {
		return fmt.Errorf("REGN sizes %d, %d in %d bytes", nn, on, len(p))
	}
	if err := j.checkRegion(r.File, r.Off, nn, on); err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	r.New, r.Old = p[regnFixed:regnFixed+nn], p[regnFixed+nn:]
	return j.callRegion(fn, r, zeroOld, on)
}

// addUndo reads an UNDO record of an undo journal, or with zeroOld an
// UNDZ record, whose old bytes are zeros and not stored.
func (j *journal) addUndo(p []byte, fn func(region) error, zeroOld bool) error {
	if !j.Undo {
		return errors.New("UNDO record in a redo journal")
	}
	if len(p) < undoFixed {
		return errors.New("short UNDO record")
	}
	r, nn, on := j.regionHead(p)
	stored := on
	if zeroOld {
		stored = 0
	}
	if int64(len(p)) != undoFixed+stored {
		return fmt.Errorf("UNDO sizes %d, %d in %d bytes", nn, on, len(p))
	}
	if err := j.checkRegion(r.File, r.Off, nn, on); err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	r.Undo, r.Sum = true, binary.LittleEndian.Uint64(p[regnFixed:])
	r.New, r.Old = zeroChunk[:nn], p[undoFixed:]
	return j.callRegion(fn, r, zeroOld, on)
}

// regionHead decodes the fields both region records start with.
func (j *journal) regionHead(p []byte) (r region, newN, oldN int64) {
	r.File = int(binary.LittleEndian.Uint32(p))
	r.Off = int64(binary.LittleEndian.Uint64(p[4:]))
	return r, int64(binary.LittleEndian.Uint32(p[12:])), int64(binary.LittleEndian.Uint32(p[16:]))
}

// checkRegion checks a region's place against its file's lengths and
// counts it.
func (j *journal) checkRegion(id int, off, nn, on int64) error {
	switch {
	case id >= len(j.Files):
		return fmt.Errorf("region names file %d of %d", id, len(j.Files))
	case nn > maxChunk || on > maxChunk || nn+on == 0:
		return fmt.Errorf("region sizes %d, %d", nn, on)
	case off < 0 || off > maxFileLen || (nn > 0 && off+nn > j.Files[id].NewLen) || (on > 0 && off+on > j.Files[id].OldLen):
		return fmt.Errorf("region at %d+%d/%d outside file lengths", off, nn, on)
	}
	j.Regions++
	j.NewBytes += nn
	return nil
}

func (j *journal) callRegion(fn func(region) error, r region, zeroOld bool, on int64) error {
	if zeroOld {
		r.Old = make([]byte, on)
	}
	if err := fn(r); err != nil {
		return callbackError{err}
	}
	return nil
}

func (j *journal) seal(p []byte, sum []byte) error {
	if len(p) != comtSize {
		return errors.New("short COMT record")
	}
	files := int(binary.LittleEndian.Uint32(p))
	regions := int64(binary.LittleEndian.Uint64(p[4:]))
	newBytes := int64(binary.LittleEndian.Uint64(p[12:]))
	if files != len(j.Files) || regions != j.Regions || newBytes != j.NewBytes {
		return fmt.Errorf("COMT counts %d/%d/%d, journal holds %d/%d/%d",
			files, regions, newBytes, len(j.Files), j.Regions, j.NewBytes)
	}
	if !bytes.Equal(p[20:], sum) {
		return errors.New("COMT SHA-256 mismatch")
	}
	copy(j.Sum[:], sum)
	return nil
}
