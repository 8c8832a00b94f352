package hive

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// replayOld applies an old-format (Vista/7) log: the first one that is
// valid (equal sequence numbers in its base block) and applicable (its
// timestamp equals the primary's) is used, as Windows does.
//
// When the primary's base block is invalid, the log's base block replaces
// it and there is no primary timestamp to match: Windows then takes the
// first log whose own base block is valid.
func (h *Hive) replayOld(base []byte, valid bool, bb baseBlock, logs []logFile) error {
	var errs []error
	for _, l := range logs {
		if l.bb.seq1 != l.bb.seq2 {
			errs = append(errs, fmt.Errorf("%s: sequence numbers %d and %d differ (the log itself was not completely written): %w", l.name, l.bb.seq1, l.bb.seq2, ErrBadLog))
			continue
		}
		if valid && l.bb.timestamp != bb.timestamp {
			errs = append(errs, fmt.Errorf("%s: written for another state of the hive (timestamp differs): %w", l.name, ErrBadLog))
			continue
		}
		data, pages, err := applyDirtyVector(base, l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nb := bb
		if !valid {
			nb = l.bb
			h.replay.RecoveredBaseBlock = true
		}
		nb.fileType = fileTypePrimary
		nb.seq1, nb.seq2 = l.bb.seq1, l.bb.seq1
		nb.binsSize = l.bb.binsSize
		h.bb, h.data = nb, data
		h.replay.Format = LogOld
		h.replay.Pages = pages
		return nil
	}
	return fmt.Errorf("no old-format log applies: %w", errorsJoin(errs))
}

// applyDirtyVector copies the dirty 512-byte pages of an old-format log
// over the primary's hive bins data.
func applyDirtyVector(base []byte, l logFile) ([]byte, int, error) {
	const sector = 512
	lg := l.data
	size := l.bb.binsSize
	if size == 0 || size%4096 != 0 {
		return nil, 0, fmt.Errorf("%s: hive bins size 0x%x: %w", l.name, size, ErrBadLog)
	}
	nbits := int(size / sector)
	vecEnd := sector + 4 + (nbits+7)/8
	if len(lg) < vecEnd || string(lg[sector:sector+4]) != "DIRT" {
		return nil, 0, fmt.Errorf("%s: no DIRT dirty vector at offset 512: %w", l.name, ErrBadLog)
	}
	bitmap := lg[sector+4 : vecEnd]
	pagesAt := (vecEnd + sector - 1) / sector * sector
	count := 0
	for _, b := range bitmap {
		count += bits.OnesCount8(b)
	}
	if pagesAt+count*sector > len(lg) {
		return nil, 0, fmt.Errorf("%s: %d dirty pages announced, the log holds %d: %w", l.name, count, (len(lg)-pagesAt)/sector, ErrBadLog)
	}
	data := make([]byte, size) // a copy: another log may be tried next
	copy(data, binsOf(base, size))
	j := 0
	for i := 0; i < nbits; i++ {
		if bitmap[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		copy(data[i*sector:(i+1)*sector], lg[pagesAt+j*sector:])
		j++
	}
	if err := checkDirtyBins(data); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", l.name, err)
	}
	return data, count, nil
}

// checkDirtyBins verifies, as Windows does, that every hive bin touched by
// the log starts with a sound header after the copy.
func checkDirtyBins(data []byte) error {
	var pos uint64
	for pos < uint64(len(data)) {
		b := data[pos:]
		if len(b) < hbinHeaderLen || string(b[:4]) != "hbin" || uint64(binary.LittleEndian.Uint32(b[4:])) != pos {
			return fmt.Errorf("hive bin at 0x%x is not sound after replay: %w", pos, ErrBadLog)
		}
		size := uint64(binary.LittleEndian.Uint32(b[8:]))
		if size < 4096 || size%4096 != 0 {
			return fmt.Errorf("hive bin at 0x%x has size 0x%x after replay: %w", pos, size, ErrBadLog)
		}
		pos += size
	}
	return nil
}
