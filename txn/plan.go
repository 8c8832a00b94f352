package txn

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"path/filepath"
	"slices"
)

// diffGap is how many equal bytes may separate two changed ones and still
// be journaled as one region: a region costs 32 bytes of framing.
const diffGap = 64

// interval is [start, end) of a host file.
type interval struct{ start, end int64 }

// journalStaged writes a FILE record for every host file the format
// changed and a REGN record for every run of bytes that differs from the
// real file, plus the old bytes of any tail a shrink cut off.
func journalStaged(j *journalWriter, dir string, s *stager) error {
	var files []*staged
	for _, st := range s.order {
		if !st.changed() {
			continue
		}
		rel, err := filepath.Rel(dir, st.path)
		if err != nil || !validRelPath(rel) || len(rel) > maxPathLen {
			return fmt.Errorf("txn: %s: the format wrote to a file outside the image's directory %s", st.path, dir)
		}
		if len(files) == maxFiles {
			return fmt.Errorf("txn: the format changed more than %d host files", maxFiles)
		}
		if err := j.file(rel, st.realSize, st.size, st.realMtime); err != nil {
			return err
		}
		files = append(files, st)
	}
	j.src = files
	for id, st := range files {
		if err := journalFile(j, id, st); err != nil {
			return err
		}
	}
	return nil
}

func journalFile(j *journalWriter, id int, st *staged) error {
	newBuf := make([]byte, maxChunk)
	oldBuf := make([]byte, maxChunk)
	for _, iv := range candidates(st) {
		for off := iv.start; off < iv.end; {
			n := min(iv.end-off, maxChunk-off%maxChunk)
			nb, ob := newBuf[:n], oldBuf[:n]
			if err := st.readNew(nb, off); err != nil {
				return err
			}
			if err := st.readOld(ob, off, st.realSize); err != nil {
				return err
			}
			oldAvail := max(0, min(n, st.realSize-off))
			if err := journalDiff(j, id, off, nb, ob[:oldAvail]); err != nil {
				return err
			}
			off += n
		}
	}
	return journalTail(j, id, st, oldBuf)
}

// candidates are the parts of the new file that may differ from the old:
// staged pages, and real bytes a shrink cut off that the file regrew over.
func candidates(st *staged) []interval {
	var ivs []interval
	for _, idx := range st.sortedPages() {
		start := idx * pageSize
		end := min(start+pageSize, st.size)
		if n := len(ivs); n > 0 && ivs[n-1].end == start {
			ivs[n-1].end = end
		} else {
			ivs = append(ivs, interval{start, end})
		}
	}
	if cut := min(st.size, st.realSize); st.visible < cut {
		ivs = append(ivs, interval{st.visible, cut})
	}
	return mergeIntervals(ivs)
}

func mergeIntervals(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.start, b.start) })
	var out []interval
	for _, iv := range ivs {
		if iv.end <= iv.start {
			continue
		}
		if n := len(out); n > 0 && iv.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, iv.end)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// journalDiff journals the runs where nb differs from ob; bytes past the
// end of ob (past the old length) always count as different.
func journalDiff(j *journalWriter, id int, off int64, nb, ob []byte) error {
	return diffRuns(nb, ob, func(start, end int) error {
		oe := min(end, len(ob))
		return j.region(id, off+int64(start), nb[start:end], ob[min(start, oe):oe])
	})
}

// diffRuns calls fn with each run [start, end) of nb that differs from ob:
// from a differing byte to the last one before diffGap equal bytes (or the
// end). It compares eight bytes at a time, since a commit passes every
// byte it writes through here.
func diffRuns(nb, ob []byte, fn func(start, end int) error) error {
	for i := nextDiff(nb, ob, 0); i < len(nb); i = nextDiff(nb, ob, i) {
		end := runEnd(nb, ob, i)
		if err := fn(i, end); err != nil {
			return err
		}
		i = end
	}
	return nil
}

// nextDiff is the first index from i where nb differs from ob (every
// index past ob differs), or len(nb).
func nextDiff(nb, ob []byte, i int) int {
	m := min(len(nb), len(ob))
	for ; i+8 <= m; i += 8 {
		if x := le64(nb[i:]) ^ le64(ob[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < m && nb[i] == ob[i] {
		i++
	}
	return i
}

// runEnd is the end of the run of differences starting at i: just past
// the last differing byte that is not followed by diffGap equal ones.
func runEnd(nb, ob []byte, i int) int {
	n, m := len(nb), min(len(nb), len(ob))
	last := i // the last differing byte seen
	for p := i + 1; p < n && p-last-1 < diffGap; {
		switch {
		case p >= m:
			return n
		case p+8 <= m:
			if x := le64(nb[p:]) ^ le64(ob[p:]); x != 0 {
				if first := p + bits.TrailingZeros64(x)/8; first-last-1 >= diffGap {
					return last + 1
				}
				last = p + 7 - bits.LeadingZeros64(x)/8
			}
			p += 8
		default:
			if nb[p] != ob[p] {
				last = p
			}
			p++
		}
	}
	return last + 1
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// journalTail keeps the old bytes past a shrunk file's new end, so that
// Rollback can give them back.
func journalTail(j *journalWriter, id int, st *staged, buf []byte) error {
	for off := st.size; off < st.realSize; {
		n := min(st.realSize-off, maxChunk)
		if err := st.readOld(buf[:n], off, st.realSize); err != nil {
			return err
		}
		if err := j.region(id, off, nil, buf[:n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}
