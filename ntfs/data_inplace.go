package ntfs

import (
	"errors"
	"fmt"
	"syscall"
)

// overwriteInPlace writes p at off into a stream whose extents live in
// several records (an $ATTRIBUTE_LIST file, such as a fragmented registry
// hive) when no attribute has to change: the range is initialised, not
// compressed and fully allocated. It reports false when it cannot.
func (v *Volume) overwriteInPlace(num uint64, name string, p []byte, off int64) (bool, error) {
	in, err := v.loadInode(num)
	if err != nil {
		return false, err
	}
	s := in.find(atData, name)
	if s == nil || s.resident || s.flags&(afCompressed|afEncrypted) != 0 || off+int64(len(p)) > s.initSize {
		return false, nil
	}
	cs := v.geo.clusterSize
	for vcn := off / cs; vcn <= (off+int64(len(p))-1)/cs; {
		i := findRun(s.runs, vcn)
		if i < 0 || s.runs[i].lcn < 0 {
			return false, nil
		}
		vcn = s.runs[i].vcn + s.runs[i].length
	}
	if err := v.writeRuns(s.runs, p, off); err != nil {
		return false, fmt.Errorf("ntfs: MFT record %d: %w", num, err)
	}
	return true, nil
}

// isSplitStream reports whether a stream's attribute is not wholly in the
// base record, so that openData cannot edit it.
func isSplitStream(err error) bool { return err != nil && errors.Is(err, syscall.EOPNOTSUPP) }
