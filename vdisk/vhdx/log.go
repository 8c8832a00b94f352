package vhdx

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

// The log ([MS-VHDX] 2.3) is a ring of 4 KiB sectors holding entries;
// each entry is a header, descriptors, and the data sectors the data
// descriptors describe. Replaying the active sequence brings the
// metadata to the state its writer committed.

const (
	logSector      = 4 * kib
	logEntryHeader = 64
	logDescSize    = 32
	maxLogLength   = 256 * mib
	// maxFileGrowth bounds how far a log may claim the file once reached
	// beyond its present end: a claim of exabytes is corruption, not a
	// reason to allocate them.
	maxFileGrowth = 4 << 30
)

// logEntry is a validated entry at ring offset at.
type logEntry struct {
	at          int64
	length      int64
	tail        int64
	seq         uint64
	flushedSize int64
	lastSize    int64
	writes      []extent
}

// extent is one replayed write: data, or zeroLen zero bytes when data is nil.
type extent struct {
	off     int64
	data    []byte
	zeroLen int64
}

func (x extent) end() int64 {
	if x.data != nil {
		return x.off + int64(len(x.data))
	}
	return x.off + x.zeroLen
}

// logReplay is the outcome of reading the log: the writes to apply, in
// order, and the size the file must have afterwards.
type logReplay struct {
	writes  []extent
	minSize int64
}

// readLog finds the active sequence of the log named by h and returns its
// writes, or nil when there is nothing to replay.
func readLog(f vdisk.File, h header, fileSize int64) (*logReplay, error) {
	name := f.Name()
	if h.LogGUID.IsZero() {
		return nil, nil
	}
	l, off := int64(h.LogLength), int64(h.LogOffset)
	if l == 0 || l%mib != 0 || l > maxLogLength || off < mib || off%mib != 0 || off+l > fileSize {
		return nil, fmt.Errorf("vhdx %s: log at %d+%d is misaligned or outside the file (size %d): %w", name, off, l, fileSize, vdisk.ErrCorrupt)
	}
	ring := make([]byte, l)
	if _, err := f.ReadAt(ring, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vhdx %s: reading log: %w", name, err)
	}
	seq := findActiveSequence(ring, h.LogGUID, fileSize)
	if len(seq) == 0 {
		return nil, nil
	}
	head := seq[len(seq)-1]
	if head.flushedSize > fileSize {
		return nil, fmt.Errorf("vhdx %s: log says the file held %d bytes, it holds %d (truncated): %w", name, head.flushedSize, fileSize, vdisk.ErrCorrupt)
	}
	r := &logReplay{minSize: head.lastSize}
	for _, e := range seq {
		r.writes = append(r.writes, e.writes...)
	}
	return r, nil
}

// findActiveSequence returns the entries from tail to head of the valid
// sequence with the highest sequence number, or nil.
func findActiveSequence(ring []byte, logGUID GUID, fileSize int64) []*logEntry {
	l := int64(len(ring))
	budget := 8 * l // checksum work allowed: a sane log reads each byte about once
	entries := map[int64]*logEntry{}
	for at := int64(0); at < l; at += logSector {
		if e := parseLogEntry(ring, at, logGUID, fileSize, &budget); e != nil {
			entries[at] = e
		}
	}
	// Link each entry to the one right after it with the next number;
	// numbers only grow, so the links form chains, never cycles.
	next := map[int64]*logEntry{}
	hasPrev := map[int64]bool{}
	for at, e := range entries {
		if n, ok := entries[(at+e.length)%l]; ok && n.seq == e.seq+1 && n.at != at {
			next[at] = n
			hasPrev[n.at] = true
		}
	}
	var best []*logEntry
	for at, e := range entries {
		if hasPrev[at] {
			continue
		}
		chain := []*logEntry{e}
		for n := next[at]; n != nil && len(chain) <= len(entries); n = next[n.at] {
			chain = append(chain, n)
		}
		head := chain[len(chain)-1]
		// Valid only if the head's tail is inside the chain: then every
		// entry still needed is present.
		for i, c := range chain {
			if c.at == head.tail {
				if best == nil || head.seq > best[len(best)-1].seq {
					best = chain[i:]
				}
				break
			}
		}
	}
	return best
}

// ringBytes copies n bytes from the ring at at, wrapping around its end.
func ringBytes(ring []byte, at, n int64) []byte {
	out := make([]byte, n)
	l := int64(len(ring))
	for i := int64(0); i < n; {
		p := (at + i) % l
		c := copy(out[i:], ring[p:])
		i += int64(c)
	}
	return out
}

// parseLogEntry validates the entry at ring offset at: signature,
// GUID, layout, checksum, and the sequence number in every descriptor
// and data sector.
func parseLogEntry(ring []byte, at int64, logGUID GUID, fileSize int64, budget *int64) *logEntry {
	l := int64(len(ring))
	h := ring[at : at+logEntryHeader]
	if string(h[:4]) != "loge" {
		return nil
	}
	e := &logEntry{
		at:          at,
		length:      int64(binary.LittleEndian.Uint32(h[8:])),
		tail:        int64(binary.LittleEndian.Uint32(h[12:])),
		seq:         binary.LittleEndian.Uint64(h[16:]),
		flushedSize: int64(binary.LittleEndian.Uint64(h[48:]) & (1<<62 - 1)),
		lastSize:    int64(binary.LittleEndian.Uint64(h[56:]) & (1<<62 - 1)),
	}
	count := int64(binary.LittleEndian.Uint32(h[24:]))
	var g GUID
	copy(g[:], h[32:48])
	descSectors := (logEntryHeader + logDescSize*count + logSector - 1) / logSector
	if g != logGUID || e.seq == 0 || e.length == 0 || e.length%logSector != 0 || e.length > l ||
		e.tail%logSector != 0 || e.tail >= l || descSectors*logSector > e.length ||
		e.lastSize > fileSize+maxFileGrowth {
		return nil
	}
	if *budget -= e.length; *budget < 0 {
		return nil
	}
	buf := ringBytes(ring, at, e.length)
	if !checksumOK(buf) {
		return nil
	}
	dataAt := descSectors * logSector
	for i := range count {
		d := buf[logEntryHeader+logDescSize*i:]
		if binary.LittleEndian.Uint64(d[24:]) != e.seq {
			return nil
		}
		fileOff := int64(binary.LittleEndian.Uint64(d[16:]))
		if fileOff < 0 || fileOff%logSector != 0 {
			return nil
		}
		switch string(d[:4]) {
		case "zero":
			n := int64(binary.LittleEndian.Uint64(d[8:]))
			if n <= 0 || n%logSector != 0 || fileOff+n > max(fileSize, e.lastSize) || fileOff+n < fileOff {
				return nil
			}
			e.writes = append(e.writes, extent{off: fileOff, zeroLen: n})
		case "desc":
			if dataAt+logSector > e.length || fileOff+logSector > max(fileSize, e.lastSize) {
				return nil
			}
			s := buf[dataAt : dataAt+logSector]
			hi, lo := binary.LittleEndian.Uint32(s[4:]), binary.LittleEndian.Uint32(s[4092:])
			if string(s[:4]) != "data" || uint64(hi)<<32|uint64(lo) != e.seq {
				return nil
			}
			sector := make([]byte, logSector)
			copy(sector[:8], d[8:16])
			copy(sector[8:4092], s[8:4092])
			copy(sector[4092:], d[4:8])
			e.writes = append(e.writes, extent{off: fileOff, data: sector})
			dataAt += logSector
		default:
			return nil
		}
	}
	return e
}

// applyLog writes the replayed extents into the file and grows it to the
// size the log recorded.
func applyLog(f vdisk.File, r *logReplay) error {
	zeros := make([]byte, mib)
	for _, x := range r.writes {
		if x.data != nil {
			if _, err := f.WriteAt(x.data, x.off); err != nil {
				return err
			}
			continue
		}
		for off := x.off; off < x.end(); off += mib {
			n := min(mib, x.end()-off)
			if _, err := f.WriteAt(zeros[:n], off); err != nil {
				return err
			}
		}
	}
	size, err := f.Size()
	if err != nil {
		return err
	}
	if size < r.minSize {
		return f.Truncate(r.minSize)
	}
	return nil
}
