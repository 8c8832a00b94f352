package ntfs

import (
	"bytes"
	"encoding/binary"
)

// checkHibernation returns why Windows still owns the volume, as ntfs-3g
// refuses it: a hibernation file with a live signature, or a $LogFile
// whose restart area says the volume was not shut down cleanly (Fast Startup).
func (v *Volume) checkHibernation() string {
	if sig, short := v.hiberSignature(); short || bytes.EqualFold(sig, []byte("hibr")) {
		return "Windows is hibernated or used Fast Startup (hiberfil.sys is active)"
	}
	if !v.logFileClean() {
		return "Windows did not shut down cleanly: $LogFile holds unreplayed changes (Fast Startup or a crash)"
	}
	return ""
}

// hiberSignature returns the first bytes of hiberfil.sys; short is true
// when the file exists but is smaller than a header (ntfs-3g takes that
// as a hibernated non-system partition).
func (v *Volume) hiberSignature() (sig []byte, short bool) {
	di, err := v.dirOf(recRoot)
	if err != nil {
		return nil, false
	}
	e, err := v.lookupEntry(di, encodeName("hiberfil.sys"))
	if err != nil {
		return nil, false
	}
	in, err := v.loadInode(e.ref & refNumMask)
	if err != nil {
		return nil, false
	}
	s := in.find(atData, "")
	if s == nil || s.dataSize < 4096 {
		return nil, true
	}
	sig = make([]byte, 4)
	if n, _ := v.readStream(s, sig, 0); n != 4 {
		return nil, false
	}
	return sig, false
}

// logFileClean reads the two restart pages of $LogFile and judges the
// newer valid one, as ntfs-3g does: an emptied log (all 0xff, as mkntfs and
// ntfs-3g leave it) is clean; otherwise a restart area with clients in use
// and without the clean flag is not.
func (v *Volume) logFileClean() bool {
	in, err := v.loadInode(recLogFile)
	if err != nil {
		return false
	}
	s := in.find(atData, "")
	if s == nil {
		return false
	}
	first := make([]byte, 4096)
	if n, _ := v.readStream(s, first, 0); n < 512 {
		return false
	}
	if bytes.Equal(first[:4], []byte{0xff, 0xff, 0xff, 0xff}) {
		return true
	}
	size := int64(binary.LittleEndian.Uint32(first[0x10:])) // system page size
	if size < 512 || size > 65536 || !pow2(size) {
		size = 4096
	}
	var best []byte
	var bestLSN uint64
	for _, off := range []int64{0, size} {
		page := make([]byte, size)
		if n, _ := v.readStream(s, page, off); int64(n) != size {
			continue
		}
		ra, lsn, ok := restartArea(page)
		if ok && (best == nil || lsn > bestLSN) {
			best, bestLSN = ra, lsn
		}
	}
	if best == nil {
		return false
	}
	inUse := binary.LittleEndian.Uint16(best[0x0c:])
	flags := binary.LittleEndian.Uint16(best[0x0e:])
	return inUse == 0xffff || flags&0x0002 != 0
}

// restartArea checks one restart page and returns its restart area and
// current LSN.
func restartArea(page []byte) ([]byte, uint64, bool) {
	magic := string(page[:4])
	if magic != "RSTR" && magic != "CHKD" {
		return nil, 0, false
	}
	if applyFixup(page, magic) != nil {
		return nil, 0, false
	}
	ra := int(binary.LittleEndian.Uint16(page[0x18:]))
	if ra+0x30 > len(page) {
		return nil, 0, false
	}
	return page[ra:], binary.LittleEndian.Uint64(page[ra:]), true
}
