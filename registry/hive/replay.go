package hive

import (
	"fmt"
	"strings"
)

// Log is one transaction log file given to a parser: its name (for
// messages: "SYSTEM.LOG1") and content.
type Log struct {
	Name string
	Data []byte
}

// namedLogs names unnamed logs by position, in the order given.
func namedLogs(logs [][]byte) []Log {
	out := make([]Log, len(logs))
	for i, l := range logs {
		out[i] = Log{Name: fmt.Sprintf("log %d", i+1), Data: l}
	}
	return out
}

// checkBaseBlock says whether a primary file's base block is valid, as
// Windows decides before trusting it: the regf signature, the checksum,
// major version 1 and minor 3 to 6, a primary file type. An invalid one is
// replaced by a log's copy (recover).
func checkBaseBlock(base []byte) (baseBlock, error) {
	bb, err := decodeBaseBlock(base)
	switch {
	case err != nil:
		return bb, err
	case !checksumOK(base):
		return bb, fmt.Errorf("base block checksum is wrong: %w", ErrCorrupt)
	case bb.minor < 3 || bb.minor > 6:
		return bb, fmt.Errorf("regf minor version %d, not 3 to 6: %w", bb.minor, ErrCorrupt)
	case bb.fileType != fileTypePrimary:
		return bb, fmt.Errorf("base block has file type %d, not a primary hive file: %w", bb.fileType, ErrCorrupt)
	}
	return bb, nil
}

// recover sets h.bb and h.data from the primary file, replaying the logs
// when the base block says the hive is dirty. The rules are Windows' (see
// doc.go, "Recovery rules"): a dirty hive no log can repair is read as the
// primary holds it and marked read-only (h.unsound); one whose base block
// is invalid is recovered with a log's base block, or refused.
func (h *Hive) recover(base []byte, logs []Log) error {
	bb, bad := checkBaseBlock(base)
	valid := bad == nil
	dirty := !valid || bb.seq1 != bb.seq2
	if valid {
		h.maxSeq = max(bb.seq1, bb.seq2)
	}
	newLogs, oldLogs := h.classifyLogs(logs)
	h.replay.Dirty = dirty
	if !dirty {
		h.bb = bb
		h.data = binsOf(base, bb.binsSize)
		return nil
	}
	for _, e := range h.logErrs { // a dirty hive's logs matter: say which were set aside
		h.problem(fmt.Errorf("log not used: %w", e))
	}
	var errs []error
	if len(newLogs) > 0 {
		err := h.replayNew(base, valid, bb, newLogs)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(oldLogs) > 0 {
		err := h.replayOld(base, valid, bb, oldLogs)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	errs = append(h.logErrs, errs...)
	if !valid {
		if len(errs) == 0 {
			return fmt.Errorf("%w, and no transaction log is present to recover it: %w", bad, ErrDirty)
		}
		return fmt.Errorf("%w, and no log recovers it: %w: %w", bad, errorsJoin(errs), ErrDirty)
	}
	// A dirty hive with no usable log: what the primary holds may miss
	// the last writes, or hold half of one. Shown as it is, never written.
	why := "no transaction log is present"
	if len(errs) > 0 {
		why = "its logs cannot be used: " + joinMessages(errs)
	}
	h.unsound = fmt.Errorf("dirty hive (sequence numbers %d and %d differ) and %s; shown as the primary file holds it, read-only: %w", bb.seq1, bb.seq2, why, ErrDirty)
	h.problem(h.unsound)
	h.bb = bb
	h.data = binsOf(base, bb.binsSize)
	return nil
}

// joinMessages puts errors on one line, for a message.
func joinMessages(errs []error) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// binsOf is the hive bins data of a primary file, cut to what it has.
func binsOf(base []byte, size uint32) []byte {
	end := min(uint64(baseBlockSize)+uint64(size), uint64(len(base)))
	return base[baseBlockSize:end]
}

type logFile struct {
	bb   baseBlock
	data []byte
	name string // for messages
}

// classifyLogs sorts the logs by format, setting aside (in h.logErrs) those
// whose base block Windows would not trust: a wrong checksum, no regf
// signature, a file type that is no log's.
func (h *Hive) classifyLogs(logs []Log) (newLogs, oldLogs []logFile) {
	for _, lg := range logs {
		l := lg.Data
		if len(l) == 0 {
			continue
		}
		if !checksumOK(l) {
			h.logErrs = append(h.logErrs, fmt.Errorf("%s: base block checksum is wrong: %w", lg.Name, ErrBadLog))
			continue
		}
		bb, err := decodeBaseBlock(l)
		if err != nil {
			h.logErrs = append(h.logErrs, fmt.Errorf("%s: %w", lg.Name, err))
			continue
		}
		h.maxSeq = max(h.maxSeq, bb.seq1, bb.seq2)
		lf := logFile{bb: bb, data: l, name: lg.Name}
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
			h.logErrs = append(h.logErrs, fmt.Errorf("%s: file type %d is not a log's: %w", lg.Name, bb.fileType, ErrBadLog))
		}
	}
	return newLogs, oldLogs
}

// Clean says whether a primary file's first 4 KiB (its base block) is
// valid and says the hive is clean: no log replay is needed to read it,
// and it is not read-only for want of one.
func Clean(head []byte) bool {
	bb, err := checkBaseBlock(head)
	return err == nil && bb.seq1 == bb.seq2
}
