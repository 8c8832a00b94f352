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
	if err := jr.header(); err != nil {
		return nil, err
	}
	j := &journal{}
	for {
		start := jr.off
		tag, p, err := jr.next()
		if err != nil {
			return nil, fmt.Errorf("record at %d: %v: %w", start, err, ErrIncomplete)
		}
		switch tag {
		case tagFile:
			err = j.addFile(p)
		case tagRegion:
			err = j.addRegion(p, fn, false)
		case tagRegionZ:
			err = j.addRegion(p, fn, true)
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

func (jr *journalReader) header() error {
	var h [headerSize]byte
	if _, err := io.ReadFull(jr.br, h[:]); err != nil {
		return fmt.Errorf("header: %v: %w", err, ErrIncomplete)
	}
	jr.sum.Write(h[:])
	jr.off = headerSize
	if string(h[:8]) != journalMagic || crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:]) {
		return fmt.Errorf("bad header: %w", ErrIncomplete)
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != journalVersion {
		return fmt.Errorf("journal version %d, want %d: %w", v, journalVersion, ErrIncomplete)
	}
	return nil
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
	j.Files = append(j.Files, jfile{Path: path, OldLen: oldLen, NewLen: newLen})
	return nil
}

// callbackError carries an error of the region callback through
// readJournal unchanged: it says nothing about the journal's soundness.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// addRegion reads a REGN record, or with zeroOld a REGZ record, whose old
// bytes are zeros and not stored.
func (j *journal) addRegion(p []byte, fn func(region) error, zeroOld bool) error {
	if len(p) < regnFixed {
		return errors.New("short REGN record")
	}
	id := int(binary.LittleEndian.Uint32(p))
	off := int64(binary.LittleEndian.Uint64(p[4:]))
	nn := int64(binary.LittleEndian.Uint32(p[12:]))
	on := int64(binary.LittleEndian.Uint32(p[16:]))
	stored := on
	if zeroOld {
		stored = 0
	}
	switch {
	case id >= len(j.Files):
		return fmt.Errorf("REGN names file %d of %d", id, len(j.Files))
	case nn > maxChunk || on > maxChunk || nn+on == 0 || int64(len(p)) != regnFixed+nn+stored:
		return fmt.Errorf("REGN sizes %d, %d in %d bytes", nn, on, len(p))
	case off < 0 || off > maxFileLen || (nn > 0 && off+nn > j.Files[id].NewLen) || (on > 0 && off+on > j.Files[id].OldLen):
		return fmt.Errorf("REGN at %d+%d/%d outside file lengths", off, nn, on)
	}
	j.Regions++
	j.NewBytes += nn
	if fn == nil {
		return nil
	}
	r := region{File: id, Off: off, New: p[regnFixed : regnFixed+nn], Old: p[regnFixed+nn:]}
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
