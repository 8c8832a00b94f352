package hive

import (
	"fmt"
)

// recover sets h.bb and h.data from the primary file, replaying the logs
// when the base block says the hive is dirty.
func (h *Hive) recover(base []byte, logs [][]byte) error {
	sumOK := checksumOK(base)
	bb, err := decodeBaseBlock(base)
	if err != nil && sumOK {
		return fmt.Errorf("base block: %w", err)
	}
	dirty := !sumOK || bb.seq1 != bb.seq2
	h.maxSeq = max(bb.seq1, bb.seq2)
	newLogs, oldLogs := h.classifyLogs(logs)
	h.replay.Dirty = dirty
	if !dirty {
		if bb.fileType != fileTypePrimary {
			return fmt.Errorf("base block has file type %d, not a primary hive file: %w", bb.fileType, ErrCorrupt)
		}
		h.bb = bb
		h.data = binsOf(base, bb.binsSize)
		return nil
	}
	var errs []error
	if len(newLogs) > 0 {
		err := h.replayNew(base, sumOK, bb, newLogs)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(oldLogs) > 0 {
		err := h.replayOld(base, sumOK, bb, oldLogs)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if !sumOK {
		if len(errs) == 0 {
			return fmt.Errorf("base block checksum is wrong and no transaction log is present: %w", ErrDirty)
		}
		return fmt.Errorf("base block checksum is wrong and no log recovers it: %w: %w", errorsJoin(errs), ErrDirty)
	}
	// A dirty hive with no usable log holds what Windows last flushed; it
	// loads it the same way, so do we, and say so.
	for _, e := range errs {
		h.problem(fmt.Errorf("logs not replayed: %w", e))
	}
	if bb.fileType != fileTypePrimary {
		return fmt.Errorf("base block has file type %d, not a primary hive file: %w", bb.fileType, ErrCorrupt)
	}
	h.bb = bb
	h.data = binsOf(base, bb.binsSize)
	return nil
}

// binsOf is the hive bins data of a primary file, cut to what it has.
func binsOf(base []byte, size uint32) []byte {
	end := min(uint64(baseBlockSize)+uint64(size), uint64(len(base)))
	return base[baseBlockSize:end]
}

type logFile struct {
	bb   baseBlock
	data []byte
	idx  int // position among the logs given, for messages
}

// classifyLogs sorts the logs by format, dropping (with a problem noted)
// those whose base block is unreadable.
func (h *Hive) classifyLogs(logs [][]byte) (newLogs, oldLogs []logFile) {
	for i, l := range logs {
		if len(l) == 0 {
			continue
		}
		if !checksumOK(l) {
			h.problem(fmt.Errorf("log %d: base block checksum is wrong: %w", i+1, ErrBadLog))
			continue
		}
		bb, err := decodeBaseBlock(l)
		if err != nil {
			h.problem(fmt.Errorf("log %d: %w", i+1, err))
			continue
		}
		h.maxSeq = max(h.maxSeq, bb.seq1, bb.seq2)
		lf := logFile{bb: bb, data: l, idx: i + 1}
		switch bb.fileType {
		case fileTypeLogNew:
			h.seenFormat = LogNew
			newLogs = append(newLogs, lf)
			for _, e := range logEntries(l) {
				h.maxSeq = max(h.maxSeq, e.seq)
			}
		case fileTypeLogOld, fileTypeLogOld2:
			if h.seenFormat == LogNone {
				h.seenFormat = LogOld
			}
			oldLogs = append(oldLogs, lf)
		default:
			h.problem(fmt.Errorf("log %d: file type %d is not a log: %w", i+1, bb.fileType, ErrBadLog))
		}
	}
	return newLogs, oldLogs
}
