package vhdx

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
)

// logWrite is one descriptor of a hand-built entry: a 4 KiB sector, or
// zeros when zero > 0.
type logWrite struct {
	off    int64
	sector []byte
	zero   int64
}

// buildEntry lays out an entry as [MS-VHDX] 2.3.1 describes: header and
// descriptors in the first sectors, then one data sector per data
// descriptor carrying the sector's middle, its first 8 and last 4 bytes
// kept in the descriptor.
func buildEntry(g GUID, seq uint64, tail uint32, ws []logWrite) []byte {
	descSectors := (logEntryHeader + logDescSize*len(ws) + logSector - 1) / logSector
	n := descSectors
	for _, w := range ws {
		if w.zero == 0 {
			n++
		}
	}
	b := make([]byte, n*logSector)
	copy(b, "loge")
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[12:], tail)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint32(b[24:], uint32(len(ws)))
	copy(b[32:], g[:])
	binary.LittleEndian.PutUint64(b[48:], 4*mib)
	binary.LittleEndian.PutUint64(b[56:], 4*mib)
	data := descSectors * logSector
	for i, w := range ws {
		d := b[logEntryHeader+logDescSize*i:]
		binary.LittleEndian.PutUint64(d[16:], uint64(w.off))
		binary.LittleEndian.PutUint64(d[24:], seq)
		if w.zero > 0 {
			copy(d, "zero")
			binary.LittleEndian.PutUint64(d[8:], uint64(w.zero))
			continue
		}
		copy(d, "desc")
		copy(d[4:8], w.sector[4092:])
		copy(d[8:16], w.sector[:8])
		s := b[data : data+logSector]
		copy(s, "data")
		binary.LittleEndian.PutUint32(s[4:], uint32(seq>>32))
		copy(s[8:4092], w.sector[8:4092])
		binary.LittleEndian.PutUint32(s[4092:], uint32(seq))
		data += logSector
	}
	setChecksum(b)
	return b
}

// place copies an entry into the ring at at, wrapping around its end.
func place(ring []byte, at int, e []byte) {
	for i := range e {
		ring[(at+i)%len(ring)] = e[i]
	}
}

func TestActiveSequence(t *testing.T) {
	g, other := mustGUID("11111111-2222-3333-4444-555555555555"), mustGUID("66666666-2222-3333-4444-555555555555")
	r := rand.New(rand.NewSource(5))
	sector := func() []byte { b := make([]byte, logSector); r.Read(b); return b }
	a, b2, c := logWrite{off: 2 * mib, sector: sector()}, logWrite{off: 2*mib + 4096, sector: sector()}, logWrite{off: 3 * mib, zero: 8192}
	const ringLen = 64 * kib
	cases := []struct {
		name  string
		build func(ring []byte)
		want  []logWrite
	}{
		{"two entries from the tail", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			place(ring, 0, e1)
			place(ring, len(e1), buildEntry(g, 6, 0, []logWrite{b2, c}))
		}, []logWrite{a, b2, c}},
		{"tail moved past the first", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			place(ring, 0, e1)
			place(ring, len(e1), buildEntry(g, 6, uint32(len(e1)), []logWrite{b2}))
		}, []logWrite{b2}},
		{"entry wraps around the ring", func(ring []byte) {
			at := ringLen - logSector // header here, data sectors at 0 and 4K
			e1 := buildEntry(g, 9, uint32(at), []logWrite{a, b2})
			place(ring, at, e1)
			place(ring, (at+len(e1))%ringLen, buildEntry(g, 10, uint32(at), []logWrite{c}))
		}, []logWrite{a, b2, c}},
		{"broken head checksum", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			place(ring, 0, e1)
			e2 := buildEntry(g, 6, 0, []logWrite{b2})
			e2[len(e2)-100]++
			place(ring, len(e1), e2)
		}, []logWrite{a}},
		{"head of another log", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			place(ring, 0, e1)
			place(ring, len(e1), buildEntry(other, 6, 0, []logWrite{b2}))
		}, []logWrite{a}},
		{"newer entry whose tail is missing", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			place(ring, 0, e1)
			place(ring, 32*kib, buildEntry(g, 100, 16*kib, []logWrite{b2}))
		}, []logWrite{a}},
		{"data sector with the wrong sequence", func(ring []byte) {
			e1 := buildEntry(g, 5, 0, []logWrite{a})
			binary.LittleEndian.PutUint32(e1[logSector+4092:], 4)
			setChecksum(e1)
			place(ring, 0, e1)
		}, nil},
		{"empty", func(ring []byte) {}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ring := make([]byte, ringLen)
			tc.build(ring)
			var got []extent
			for _, e := range findActiveSequence(ring, g, 8*mib) {
				got = append(got, e.writes...)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d writes replayed, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				x := got[i]
				if x.off != w.off || (w.zero > 0 && (x.data != nil || x.zeroLen != w.zero)) || (w.zero == 0 && !bytes.Equal(x.data, w.sector)) {
					t.Errorf("write %d: off %d zero %d, want off %d zero %d (or its data differs)", i, x.off, x.zeroLen, w.off, w.zero)
				}
			}
		})
	}
}
