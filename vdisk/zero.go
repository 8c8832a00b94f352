package vdisk

// IsZero reports whether b holds only zero bytes; formats use it to leave
// writes of zeros into unallocated blocks unallocated.
func IsZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CheckRange validates an access of n bytes at off on a disk of size.
func CheckRange(off int64, n int, size int64) error {
	if off < 0 || off+int64(n) > size || off+int64(n) < off {
		return ErrOutOfRange
	}
	return nil
}
