package ntfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"
)

// $Secure keeps every security descriptor once: the $SDS stream holds
// them (each entry a 20-byte header — hash, id, offset, length — then the
// descriptor, 16-byte aligned, never across a 256 KiB block, every block
// followed by its mirror copy), $SII indexes them by id and $SDH by hash
// then id. Files name theirs by id in $STANDARD_INFORMATION.

const (
	sdsBlock     = 0x40000 // a block of $SDS; its mirror follows it
	sdsFirstID   = 0x100
	secureIdxKey = 1 << 62 // keeps $SII and $SDH editors apart from directories in op.dirs
)

// sdsEntry is one descriptor of $SDS.
type sdsEntry struct {
	hash, id uint32
	off      int64
	sd       []byte
}

// secureState is $SDS as read at the first need, kept in step by appends.
type secureState struct {
	byID   map[uint32]*sdsEntry
	byHash map[uint32][]*sdsEntry
	nextID uint32
	end    int64 // where the next entry may start (in a primary block)
}

// sdHash is NTFS's descriptor hash (ntfs-3g's ntfs_security_hash).
func sdHash(sd []byte) uint32 {
	var h uint32
	for i := 0; i+4 <= len(sd); i += 4 {
		h = binary.LittleEndian.Uint32(sd[i:]) + (h<<3 | h>>29)
	}
	return h
}

// secure loads $SDS; nil (no error) when the volume has no $Secure.
func (v *Volume) secure() (*secureState, error) {
	if v.w.secure != nil {
		return v.w.secure, nil
	}
	in, err := v.loadInode(recSecure)
	if err != nil {
		return nil, nil
	}
	s := in.find(atData, "$SDS")
	if s == nil || in.find(atIndexRoot, "$SII") == nil || in.find(atIndexRoot, "$SDH") == nil {
		return nil, nil
	}
	if s.dataSize > 256<<20 {
		return nil, fmt.Errorf("ntfs: $Secure:$SDS of %d bytes: %w", s.dataSize, syscall.EIO)
	}
	buf := make([]byte, s.dataSize)
	if n, err := v.readStream(s, buf, 0); int64(n) < s.dataSize {
		return nil, fmt.Errorf("ntfs: $Secure:$SDS: %w", err)
	}
	st := parseSDS(buf)
	v.w.secure = st
	return st, nil
}

// parseSDS reads the entries of the primary blocks of $SDS, stopping in
// each block at the first header that does not hold together.
func parseSDS(buf []byte) *secureState {
	st := &secureState{byID: map[uint32]*sdsEntry{}, byHash: map[uint32][]*sdsEntry{}, nextID: sdsFirstID}
	le := binary.LittleEndian
	for b := int64(0); b < int64(len(buf)); b += 2 * sdsBlock {
		for o := b; o+sdHeaderSize <= min(b+sdsBlock, int64(len(buf))); {
			l := int64(le.Uint32(buf[o+16:]))
			if l < sdHeaderSize || o+l > min(b+sdsBlock, int64(len(buf))) || le.Uint64(buf[o+8:]) != uint64(o) {
				break
			}
			e := &sdsEntry{hash: le.Uint32(buf[o:]), id: le.Uint32(buf[o+4:]), off: o, sd: buf[o+sdHeaderSize : o+l]}
			st.byID[e.id] = e
			st.byHash[e.hash] = append(st.byHash[e.hash], e)
			if e.id >= st.nextID && e.id < 0xffffffff {
				st.nextID = e.id + 1
			}
			o = (o + l + 15) &^ 15
			st.end = o
		}
	}
	return st
}

// descriptorOf returns the descriptor of the file whose
// $STANDARD_INFORMATION is si (nil when it has none in $Secure).
func (v *Volume) descriptorOf(si []byte) ([]byte, error) {
	if len(si) < 0x38 {
		return nil, nil
	}
	st, err := v.secure()
	if st == nil || err != nil {
		return nil, err
	}
	if e := st.byID[binary.LittleEndian.Uint32(si[0x34:])]; e != nil {
		return e.sd, nil
	}
	return nil, nil
}

// securityID returns the id of descriptor sd, adding it to $Secure when
// no file uses it yet.
func (o *op) securityID(sd []byte) (uint32, error) {
	v := o.v
	st, err := v.secure()
	if err != nil || st == nil {
		return 0, err
	}
	h := sdHash(sd)
	for _, e := range st.byHash[h] {
		if bytes.Equal(e.sd, sd) {
			return e.id, nil
		}
	}
	l := int64(sdHeaderSize + len(sd))
	off := st.end
	if off%(2*sdsBlock)+l > sdsBlock { // the next primary block
		off = (off/(2*sdsBlock) + 1) * 2 * sdsBlock
	}
	e := &sdsEntry{hash: h, id: st.nextID, off: off, sd: sd}
	hdr := make([]byte, sdHeaderSize)
	le := binary.LittleEndian
	le.PutUint32(hdr, h)
	le.PutUint32(hdr[4:], e.id)
	le.PutUint64(hdr[8:], uint64(off))
	le.PutUint32(hdr[16:], uint32(l))
	entry := append(append([]byte(nil), hdr...), sd...)
	r, err := o.rec(recSecure)
	if err != nil {
		return 0, err
	}
	d, err := o.openStream(r, "$SDS")
	if err != nil {
		return 0, err
	}
	o.mark(r)
	for _, at := range []int64{off, off + sdsBlock} { // the entry and its mirror
		if err := v.writeData(d, entry, at); err != nil {
			return 0, fmt.Errorf("ntfs: $Secure:$SDS: %w", err)
		}
	}
	if err := o.indexSecurity(r, e, hdr); err != nil {
		return 0, err
	}
	st.byID[e.id] = e
	st.byHash[h] = append(st.byHash[h], e)
	st.nextID++
	st.end = (off + l + 15) &^ 15
	return e.id, nil
}

// indexSecurity adds a new descriptor to $SII and $SDH.
func (o *op) indexSecurity(r *record, e *sdsEntry, hdr []byte) error {
	le := binary.LittleEndian
	for i, idx := range []string{"$SII", "$SDH"} {
		key := uint64(recSecure) | secureIdxKey<<i
		dw := o.dirs[key]
		if dw == nil {
			var err error
			if dw, err = o.openIndexW(r, idx, collateULongs); err != nil {
				return fmt.Errorf("ntfs: $Secure:%s: %w", idx, err)
			}
			o.dirs[key] = dw
		}
		var k, data []byte
		if idx == "$SII" {
			k, data = le.AppendUint32(nil, e.id), hdr
		} else {
			k = le.AppendUint32(le.AppendUint32(nil, e.hash), e.id)
			data = append(append([]byte(nil), hdr...), 'I', 0, 'I', 0) // padding, as Windows writes it
		}
		ref := uint64(0x10+len(k)) | uint64(sdHeaderSize)<<16
		if err := dw.insertEntry(wentry{ref: ref, key: k, data: data, child: -1}); err != nil {
			return fmt.Errorf("ntfs: $Secure:%s: %w", idx, err)
		}
	}
	return nil
}

// inheritedSecurity is the security id a new file in directory dw gets:
// the descriptor inherited from the parent's, stored once; the parent's
// own id when it passes nothing on or has no descriptor in $Secure.
func (o *op) inheritedSecurity(dw *dirW, dir bool) (uint32, error) {
	psi, err := siValue(dw.r)
	if err != nil || len(psi) < 0x38 {
		return 0, err
	}
	parentID := binary.LittleEndian.Uint32(psi[0x34:])
	psd, err := o.v.descriptorOf(psi)
	if err != nil {
		return parentID, err
	}
	if psd == nil { // an old-style $SECURITY_DESCRIPTOR attribute (ntfs-3g writes them)
		if psd, err = o.v.ownDescriptor(dw.r.num); err != nil || psd == nil {
			return parentID, err
		}
	}
	sd, err := inheritSD(psd, dir)
	if err != nil {
		return 0, fmt.Errorf("ntfs: descriptor %d of directory %d: %w", parentID, dw.r.num, err)
	}
	if sd == nil {
		return parentID, nil
	}
	return o.securityID(sd)
}

// ownDescriptor reads file n's $SECURITY_DESCRIPTOR attribute, if any.
func (v *Volume) ownDescriptor(n uint64) ([]byte, error) {
	in, err := v.loadInode(n)
	if err != nil {
		return nil, err
	}
	s := in.find(atSecurityDesc, "")
	if s == nil {
		return nil, nil
	}
	if s.resident {
		return s.value, nil
	}
	if s.dataSize > 1<<16 {
		return nil, fmt.Errorf("ntfs: MFT record %d: $SECURITY_DESCRIPTOR of %d bytes: %w", n, s.dataSize, syscall.EIO)
	}
	b := make([]byte, s.dataSize)
	if k, err := v.readStream(s, b, 0); int64(k) < s.dataSize {
		return nil, fmt.Errorf("ntfs: MFT record %d: $SECURITY_DESCRIPTOR: %w", n, err)
	}
	return b, nil
}
