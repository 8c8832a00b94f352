package xfs

import (
	"fmt"
	"io"
)

// The log's clean-unmount check, after the kernel's xlog_find_head and
// xlog_find_tail (fs/xfs/xfs_log_recover.c), simplified: a clean log
// ends with a record of one operation flagged as an unmount.
const (
	logBB          = 512
	logMagic       = 0xFEEDBABE
	logUnmount     = 0x20 // XLOG_UNMOUNT_TRANS
	logCycleSize   = 32 << 10
	maxLogScanBack = 2048 // sectors searched back from the head for a record header
)

// logState says whether the internal log holds transactions the guest
// did not finish writing to their places: "" for a clean log, else why
// it is not clean (or could not be read).
func (f *FS) logState(logStart uint64, logBlocks uint32) string {
	if logStart == 0 {
		return "" // an external log is not on this device
	}
	base, ok := f.sb.fsbToByte(logStart)
	n := int64(logBlocks) * f.sb.blockSize / logBB
	if !ok || n <= 0 || base+n*logBB > f.dev.Size() {
		return "xfs log outside the volume"
	}
	l := &logReader{dev: f.dev, base: base, n: n}
	head, err := l.findHead()
	if err != nil {
		return "xfs log unreadable: " + err.Error()
	}
	clean, err := l.endsWithUnmount(head)
	if err != nil {
		return "xfs log unreadable: " + err.Error()
	}
	if !clean {
		return "xfs log needs recovery (the guest did not shut down cleanly)"
	}
	return ""
}

type logReader struct {
	dev  io.ReaderAt
	base int64
	n    int64 // sectors
}

func (l *logReader) sector(i int64) ([]byte, error) {
	b := make([]byte, logBB)
	i = (i%l.n + l.n) % l.n
	if _, err := l.dev.ReadAt(b, l.base+i*logBB); err != nil {
		return nil, err
	}
	return b, nil
}

// cycle is the cycle number stamped on a sector (at 4 in a record
// header, in the first word of any other sector).
func (l *logReader) cycle(i int64) (uint32, error) {
	b, err := l.sector(i)
	if err != nil {
		return 0, err
	}
	if be.Uint32(b) == logMagic {
		return be.Uint32(b[4:]), nil
	}
	return be.Uint32(b), nil
}

// findHead is the first sector written in the previous pass (or never):
// the one after the newest record.
func (l *logReader) findHead() (int64, error) {
	first, err := l.cycle(0)
	if err != nil {
		return 0, err
	}
	last, err := l.cycle(l.n - 1)
	if err != nil {
		return 0, err
	}
	if first == last {
		return l.n, nil // the pass ended exactly at the log's end
	}
	lo, hi := int64(0), l.n-1 // cycle(lo) == first, cycle(hi) == last
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		c, err := l.cycle(mid)
		if err != nil {
			return 0, err
		}
		if c == first {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// endsWithUnmount finds the record header before head and says whether
// that last record is an unmount record reaching exactly to head.
func (l *logReader) endsWithUnmount(head int64) (bool, error) {
	for back := int64(1); back <= min(maxLogScanBack, l.n); back++ {
		i := head - back
		b, err := l.sector(i)
		if err != nil {
			return false, err
		}
		if be.Uint32(b) != logMagic {
			continue
		}
		hlen, nops := int64(be.Uint32(b[12:])), be.Uint32(b[40:])
		hblks := int64(1)
		if be.Uint32(b[8:])&2 != 0 { // v2 log: big records carry more header sectors
			if sz := int64(be.Uint32(b[320:])); sz > logCycleSize {
				hblks = (sz + logCycleSize - 1) / logCycleSize
			}
		}
		if (i+hblks+(hlen+logBB-1)/logBB)%l.n != head%l.n || nops != 1 {
			return false, nil
		}
		op, err := l.sector(i + hblks)
		if err != nil {
			return false, err
		}
		return op[9]&logUnmount != 0, nil
	}
	return false, fmt.Errorf("no record header within %d sectors of the head: %w", maxLogScanBack, ErrCorrupt)
}
