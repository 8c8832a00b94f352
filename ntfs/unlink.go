package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// entryIn finds name in dir case-insensitively: its record number and the
// name as stored.
func (v *Volume) entryIn(dir uint64, name string) (uint64, string, error) {
	di, err := v.dirOf(dir)
	if err != nil {
		return 0, "", err
	}
	e, err := v.lookupEntry(di, encodeName(name))
	if err != nil {
		return 0, "", fmt.Errorf("ntfs: %q in directory %d: %w", name, dir, err)
	}
	num, stored := e.ref&refNumMask, decodeName(nameBytes(e.name))
	if e.ns == nsDOS { // found by its 8.3 alias: act on the long name
		in, err := v.loadInode(num)
		if err != nil {
			return 0, "", err
		}
		for _, f := range in.names {
			if f.ns == nsWin32 && f.parent&refNumMask == dir {
				stored = f.name
			}
		}
	}
	return num, stored, nil
}

// unlinkName removes the name (and its DOS alias) of r in dir from the
// index and the record. It reports whether r has names left.
func (o *op) unlinkName(r *record, dir uint64, stored string) (bool, error) {
	dw, err := o.dir(dir)
	if err != nil {
		return false, err
	}
	recs, err := o.nameRecords(r)
	if err != nil {
		return false, err
	}
	removed, pair := false, o.dosPairOf(recs, dir, stored)
	for _, rr := range recs { // names may live in extension records
		for again := true; again; {
			again = false
			for _, off := range rr.attrOffsets() {
				if binary.LittleEndian.Uint32(rr.buf[off:]) != atFileName || rr.buf[off+8] != 0 {
					continue
				}
				fn, err := parseFileName(rr.residentValue(off))
				if err != nil {
					return false, err
				}
				if fn.parent&refNumMask != dir {
					continue
				}
				isName := fn.name == stored && fn.ns != nsDOS
				if !isName && fn.ns != nsDOS {
					continue
				}
				if fn.ns == nsDOS && !pair {
					continue
				}
				if err := dw.remove(newFileName(0, fn.name, 0, 0), fileRef(r)); err != nil {
					return false, err
				}
				rr.removeAttr(off)
				o.add(rr)
				if isName {
					removed = true
				}
				again = true
				break
			}
		}
	}
	if !removed {
		return false, fmt.Errorf("ntfs: MFT record %d has no name %q in directory %d: %w", r.num, stored, dir, syscall.ENOENT)
	}
	if r.links > 0 {
		r.links--
	}
	o.mark(r)
	if err := touch(dw.r); err != nil {
		return false, err
	}
	for _, rr := range recs {
		if rr.findAttr(atFileName, "", false) >= 0 {
			return true, nil
		}
	}
	return false, nil
}

// dosPairOf reports whether stored is a Win32 name whose DOS alias in dir
// goes with it (a Win32+DOS pair is one link).
func (o *op) dosPairOf(recs []*record, dir uint64, stored string) bool {
	for _, r := range recs {
		for _, off := range r.attrOffsets() {
			if binary.LittleEndian.Uint32(r.buf[off:]) != atFileName || r.buf[off+8] != 0 {
				continue
			}
			fn, err := parseFileName(r.residentValue(off))
			if err == nil && fn.parent&refNumMask == dir && fn.name == stored && fn.ns == nsWin32 {
				return true
			}
		}
	}
	return false
}

// freeFile releases a file without names: its clusters, its extension
// records and its own record.
func (o *op) freeFile(r *record) error {
	v := o.v
	in, err := v.loadInode(r.num)
	if err != nil {
		return err
	}
	if tag, _, err := v.reparseData(in); err == nil && tag != 0 {
		if err := o.removeReparseEntry(tag, fileRef(r)); err != nil {
			return err
		}
	}
	for _, a := range in.attrs {
		if !a.resident {
			if err := v.freeRuns(a.runs); err != nil {
				return err
			}
		}
	}
	for _, n := range in.recs {
		rr := r
		if n != r.num {
			if rr, err = v.freshRecord(n); err != nil {
				return err
			}
			o.add(rr)
		}
		rr.flags &^= recInUse
		if rr.seq++; rr.seq == 0 {
			rr.seq = 1
		}
		o.mark(rr)
		if err := v.freeRecordBit(n); err != nil {
			return err
		}
	}
	if r.flags&recIsDir != 0 {
		v.cache.forget(r.num) // its index nodes
	}
	return nil
}

// remove unlinks name from dir; wantDir selects rmdir semantics.
func (o *op) removeName(dir uint64, name string, wantDir bool) error {
	v := o.v
	num, stored, err := v.entryIn(dir, name)
	if err != nil {
		return err
	}
	if num < firstUser {
		return fmt.Errorf("ntfs: %q is an NTFS metadata file: %w", name, syscall.EPERM)
	}
	r, err := o.rec(num)
	if err != nil {
		return err
	}
	isDir := r.flags&recIsDir != 0
	switch {
	case isDir && !wantDir:
		return fmt.Errorf("ntfs: %q is a directory: %w", name, syscall.EISDIR)
	case !isDir && wantDir:
		return fmt.Errorf("ntfs: %q is not a directory: %w", name, syscall.ENOTDIR)
	case isDir:
		if err := v.checkEmpty(num); err != nil {
			return err
		}
	}
	left, err := o.unlinkName(r, dir, stored)
	if err != nil {
		return err
	}
	if left {
		return o.refreshFileNames(r)
	}
	return o.freeFile(r)
}

// checkEmpty returns ENOTEMPTY for a directory with entries.
func (v *Volume) checkEmpty(num uint64) error {
	di, err := v.dirOf(num)
	if err != nil {
		return err
	}
	errFull := fmt.Errorf("ntfs: directory %d is not empty: %w", num, syscall.ENOTEMPTY)
	err = v.walkIndex(di, func(e *indexEntry) error { return errFull })
	return err
}
