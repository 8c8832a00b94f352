package hive

import (
	"encoding/binary"
	"fmt"
	"sort"
)

const logEntryHeader = 40

// logEntry is one verified HvLE entry of a new-format log.
type logEntry struct {
	log      string // which log it came from, for messages
	at       int    // its offset in that log
	seq      uint32
	binsSize uint32
	pages    []logPage
}

type logPage struct {
	off  uint32
	data []byte
}

// logEntries returns the entries of a new-format log that pass their
// checks, stopping at the first that does not.
func logEntries(l []byte) []logEntry {
	es, _ := parseLogEntries(l, "")
	return es
}

// parseLogEntries reads HvLE entries from offset 512 on. It stops at the
// first sector without the signature (the end, or remnants) and reports why
// it stopped when an entry fails its size, layout or hash checks.
func parseLogEntries(l []byte, idx string) ([]logEntry, error) {
	le := binary.LittleEndian
	var out []logEntry
	pos := 512
	for pos+logEntryHeader <= len(l) {
		b := l[pos:]
		if string(b[:4]) != "HvLE" {
			return out, nil
		}
		size := int(le.Uint32(b[4:]))
		if size < logEntryHeader || size%512 != 0 || size > len(b) {
			return out, fmt.Errorf("%s: entry at 0x%x has bad size %d: %w", idx, pos, size, ErrBadLog)
		}
		e := b[:size]
		if marvin32(e[40:], marvinSeed) != le.Uint64(e[24:]) || marvin32(e[:32], marvinSeed) != le.Uint64(e[32:]) {
			return out, fmt.Errorf("%s: entry at 0x%x (sequence %d) fails its Marvin32 hash check: %w", idx, pos, le.Uint32(e[12:]), ErrBadLog)
		}
		ent, err := decodeLogEntry(e, idx, pos)
		if err != nil {
			return out, err
		}
		out = append(out, ent)
		pos += size
	}
	return out, nil
}

func decodeLogEntry(e []byte, idx string, pos int) (logEntry, error) {
	le := binary.LittleEndian
	ent := logEntry{log: idx, at: pos, seq: le.Uint32(e[12:]), binsSize: le.Uint32(e[16:])}
	n := int(le.Uint32(e[20:]))
	if ent.binsSize == 0 || ent.binsSize%4096 != 0 {
		return ent, fmt.Errorf("%s: entry at 0x%x has hive bins size 0x%x: %w", idx, pos, ent.binsSize, ErrBadLog)
	}
	if n > (len(e)-logEntryHeader)/8 {
		return ent, fmt.Errorf("%s: entry at 0x%x claims %d pages: %w", idx, pos, n, ErrBadLog)
	}
	data := logEntryHeader + 8*n
	for i := 0; i < n; i++ {
		off := le.Uint32(e[logEntryHeader+8*i:])
		sz := int(le.Uint32(e[logEntryHeader+8*i+4:]))
		if sz <= 0 || data+sz > len(e) || uint64(off)+uint64(sz) > uint64(ent.binsSize) {
			return ent, fmt.Errorf("%s: entry at 0x%x: page %d (0x%x, %d bytes) does not fit: %w", idx, pos, i, off, sz, ErrBadLog)
		}
		ent.pages = append(ent.pages, logPage{off: off, data: e[data : data+sz]})
		data += sz
	}
	return ent, nil
}

// replayNew applies the subsequent entries of new-format logs, in
// sequence-number order, starting at the primary's sequence number and
// stopping at the first gap.
func (h *Hive) replayNew(base []byte, valid bool, bb baseBlock, logs []logFile) error {
	if !valid {
		best := logs[0]
		for _, l := range logs[1:] {
			if l.bb.seq2 > best.bb.seq2 {
				best = l
			}
		}
		bb = best.bb
		bb.fileType = fileTypePrimary
		h.replay.RecoveredBaseBlock = true
	}
	var all []logEntry
	var stops []error
	for _, l := range logs {
		es, err := parseLogEntries(l.data, l.name)
		if err != nil {
			stops = append(stops, err)
		}
		all = append(all, es...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	// The primary's secondary number is that of its last complete write;
	// an entry with that number may hold pages the interrupted write did
	// not finish, and re-applying whole pages is harmless.
	var apply []logEntry
	next := min(bb.seq1, bb.seq2)
	for _, e := range all {
		if e.seq < next {
			continue // already in the primary, or a duplicate
		}
		if e.seq != next && len(apply) > 0 {
			break // a gap: what follows cannot be trusted
		}
		apply = append(apply, e)
		next = e.seq + 1
	}
	if len(apply) == 0 {
		if len(stops) > 0 {
			return fmt.Errorf("no log entry applies from sequence %d: %w", next, errorsJoin(stops))
		}
		return fmt.Errorf("no log entry with sequence number %d or above: %w", next, ErrBadLog)
	}
	data := binsOf(base, bb.binsSize)
	for _, e := range apply {
		data = resize(data, e.binsSize)
		for _, p := range e.pages {
			copy(data[p.off:], p.data)
		}
		h.replay.Pages += len(e.pages)
	}
	last := apply[len(apply)-1]
	bb.seq1, bb.seq2 = last.seq, last.seq
	bb.binsSize = last.binsSize
	h.bb, h.data = bb, data
	h.replay.Format = LogNew
	h.replay.Entries = len(apply)
	for _, s := range stops {
		h.replay.Notes = append(h.replay.Notes, s.Error())
	}
	return nil
}

// resize makes the hive bins data n bytes long, zero-filling growth.
func resize(data []byte, n uint32) []byte {
	if uint32(len(data)) >= n {
		return data[:n]
	}
	if uint32(cap(data)) >= n {
		old := len(data)
		data = data[:n]
		clear(data[old:])
		return data
	}
	out := make([]byte, n)
	copy(out, data)
	return out
}
