package ntfs

import (
	"bytes"
	"fmt"
)

// emptyLogFile fills $LogFile with 0xff, as ntfs-3g (ntfs_logfile_reset)
// and the kernel's ntfs3 (ntfs_bio_fill_1) do before writing: Windows then
// finds no restart area, starts a fresh log, and no record page of the old
// log can be taken for part of the new one and replayed over our changes.
// A log whose two restart pages already read as 0xff was emptied that way
// by ntfs-3g or offvm and is left as it is.
func (v *Volume) emptyLogFile() error {
	in, err := v.loadInode(recLogFile)
	if err != nil {
		return fmt.Errorf("ntfs: $LogFile: %w", err)
	}
	s := in.find(atData, "")
	if s == nil || s.resident {
		return fmt.Errorf("ntfs: $LogFile has no non-resident data")
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 0xff
	}
	if head := min(s.dataSize, 8192); head > 0 {
		b := make([]byte, head)
		if err := v.readRuns(s.runs, b, 0); err == nil && bytes.Equal(b, chunk[:head]) {
			return nil
		}
	}
	for off := int64(0); off < s.dataSize; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), s.dataSize-off)
		if err := v.writeRuns(s.runs, chunk[:n], off); err != nil {
			return fmt.Errorf("ntfs: emptying $LogFile: %w", err)
		}
	}
	return nil
}
