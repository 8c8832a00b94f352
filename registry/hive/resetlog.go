package hive

import (
	"fmt"
)

// ResetLog returns the content for each transaction log file (.LOG1, .LOG2,
// and .LOG) beside a hive file that was just replaced by Serialize's
// output: a log whose base block matches the new hive (same sequence
// numbers and timestamp, file type 6 for the new format, 1 for the old) and
// that holds no entries (new format) or an empty dirty vector (old format).
// Windows replays nothing from it; see the package documentation.
func ResetLog(serialized []byte, format LogFormat) ([]byte, error) {
	if len(serialized) < baseBlockSize || !checksumOK(serialized) {
		return nil, fmt.Errorf("hive: ResetLog needs a serialized hive with a sound base block: %w", ErrInvalid)
	}
	bb, err := decodeBaseBlock(serialized)
	if err != nil {
		return nil, fmt.Errorf("hive: ResetLog: %w", err)
	}
	switch format {
	case LogOld:
		bb.fileType = fileTypeLogOld
		nbits := int(bb.binsSize / 512)
		size := (512 + 4 + (nbits+7)/8 + 511) / 512 * 512
		out := make([]byte, size)
		copy(out, bb.encode()[:512])
		copy(out[512:], "DIRT")
		return out, nil
	default:
		bb.fileType = fileTypeLogNew
		out := make([]byte, baseBlockSize)
		copy(out, bb.encode()[:512])
		return out, nil
	}
}

// LogFormatOf says which format a hive's logs should have when rewritten:
// the format of the logs found beside it, else the new format (Windows 8.1
// and later write it whatever the hive's version; an older Windows ignores
// it beside a clean hive).
func (h *Hive) LogFormatOf() LogFormat {
	if h.replay.Format != LogNone {
		return h.replay.Format
	}
	if h.seenFormat != LogNone {
		return h.seenFormat
	}
	return LogNew
}
