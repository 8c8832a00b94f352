package ntfs

import (
	"bytes"
	"fmt"
)

// emptyLogFile fills $LogFile with 0xff, as ntfs-3g (ntfs_logfile_reset)
// and the kernel's ntfs3 (ntfs_bio_fill_1) do before writing: Windows then
// finds no restart area, starts a fresh log, and no record page of the old
// log can be taken for part of the new one and replayed over our changes.
// Only the 4 KiB log pages that are not 0xff already are written: a log
// Windows has not yet wrapped is mostly untouched pages, and each page
// written costs the overlay and its journal. A log whose two restart
// pages already read as 0xff was emptied by ntfs-3g or offvm and is left
// as it is.
func (v *Volume) emptyLogFile() error {
	in, err := v.loadInode(recLogFile)
	if err != nil {
		return fmt.Errorf("ntfs: $LogFile: %w", err)
	}
	s := in.find(atData, "")
	if s == nil || s.resident {
		return fmt.Errorf("ntfs: $LogFile has no non-resident data")
	}
	ones := bytes.Repeat([]byte{0xff}, logChunk)
	if head := min(s.dataSize, 8192); head > 0 {
		b := make([]byte, head)
		if err := v.readRuns(s.runs, b, 0); err == nil && bytes.Equal(b, ones[:head]) {
			return nil
		}
	}
	buf := make([]byte, logChunk)
	for off := int64(0); off < s.dataSize; off += logChunk {
		n := min(logChunk, s.dataSize-off)
		if err := v.readRuns(s.runs, buf[:n], off); err != nil {
			return fmt.Errorf("ntfs: reading $LogFile: %w", err)
		}
		for _, r := range usedLogPages(buf[:n]) {
			if err := v.writeRuns(s.runs, ones[:r[1]-r[0]], off+r[0]); err != nil {
				return fmt.Errorf("ntfs: emptying $LogFile: %w", err)
			}
		}
	}
	return nil
}

const (
	logChunk = 1 << 20 // bytes of $LogFile read at a time
	logPage  = 4096    // its page size on every volume Windows makes
)

// usedLogPages returns the byte ranges of b (runs of whole log pages)
// holding anything but 0xff.
func usedLogPages(b []byte) [][2]int64 {
	var out [][2]int64
	for p := 0; p < len(b); p += logPage {
		end := min(p+logPage, len(b))
		if bytes.Count(b[p:end], []byte{0xff}) == end-p {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k][1] == int64(p) {
			out[k][1] = int64(end)
		} else {
			out = append(out, [2]int64{int64(p), int64(end)})
		}
	}
	return out
}
