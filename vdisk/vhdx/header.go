package vhdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

const (
	kib = 1 << 10
	mib = 1 << 20

	headerOffset1 = 64 * kib
	headerOffset2 = 128 * kib
	headerSize    = 4 * kib
)

var fileSignature = []byte("vhdxfile")

// header is the 4 KiB header ([MS-VHDX] 2.2.2); two copies exist and the
// valid one with the highest sequence number is current.
type header struct {
	Signature      [4]byte
	Checksum       uint32
	SequenceNumber uint64
	FileWriteGUID  GUID
	DataWriteGUID  GUID
	LogGUID        GUID
	LogVersion     uint16
	Version        uint16
	LogLength      uint32
	LogOffset      uint64
}

// Match reports whether f starts with the VHDX file identifier.
func Match(f vdisk.File) bool {
	var sig [8]byte
	n, _ := f.ReadAt(sig[:], 0)
	return n == len(sig) && bytes.Equal(sig[:], fileSignature)
}

// readHeaders returns the current header and its slot (0 or 1).
func readHeaders(f vdisk.File) (header, int, error) {
	var sig [8]byte
	if _, err := f.ReadAt(sig[:], 0); err != nil || !bytes.Equal(sig[:], fileSignature) {
		return header{}, 0, fmt.Errorf("vhdx %s: no \"vhdxfile\" identifier: %w", f.Name(), vdisk.ErrCorrupt)
	}
	var hs [2]header
	var ok [2]bool
	var whyNot [2]string
	for i, off := range []int64{headerOffset1, headerOffset2} {
		hs[i], ok[i], whyNot[i] = readHeader(f, off)
	}
	switch {
	case ok[0] && ok[1]:
		if hs[1].SequenceNumber > hs[0].SequenceNumber {
			return hs[1], 1, nil
		}
		return hs[0], 0, nil
	case ok[0]:
		return hs[0], 0, nil
	case ok[1]:
		return hs[1], 1, nil
	}
	return header{}, 0, fmt.Errorf("vhdx %s: no valid header (first: %s; second: %s): %w",
		f.Name(), whyNot[0], whyNot[1], vdisk.ErrCorrupt)
}

func readHeader(f vdisk.File, off int64) (header, bool, string) {
	buf := make([]byte, headerSize)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return header{}, false, err.Error()
	} else if err == io.EOF {
		return header{}, false, "file too short"
	}
	var h header
	_ = binary.Read(bytes.NewReader(buf), binary.LittleEndian, &h)
	switch {
	case string(h.Signature[:]) != "head":
		return h, false, "no \"head\" signature"
	case !checksumOK(buf):
		return h, false, "checksum mismatch"
	case h.Version != 1:
		return h, false, fmt.Sprintf("version %d", h.Version)
	}
	return h, true, ""
}

// encode gives the 4 KiB on-disk form with its checksum.
func (h header) encode() []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, h)
	buf := make([]byte, headerSize)
	copy(buf, b.Bytes())
	setChecksum(buf)
	return buf
}

// updateHeader writes h with the next sequence number into the slot that
// is not current, so that a torn write leaves the old header in force
// ([MS-VHDX] 2.2.2.1). Call with d.mu held for writing.
func (d *Disk) updateHeader(change func(*header)) error {
	h := d.hdr
	h.SequenceNumber++
	change(&h)
	slot := 1 - d.hdrSlot
	off := int64(headerOffset1)
	if slot == 1 {
		off = headerOffset2
	}
	if _, err := d.f.WriteAt(h.encode(), off); err != nil {
		return fmt.Errorf("vhdx %s: writing header: %w", d.f.Name(), err)
	}
	d.hdr, d.hdrSlot = h, slot
	return nil
}

// beginWrite marks the file (and, for data, the virtual disk) as changed
// once per session, as the spec asks before the first modification.
func (d *Disk) beginWrite(data bool) error {
	if d.fileGUIDDone && (!data || d.dataGUIDDone) {
		return nil
	}
	fw, err := newGUID()
	if err != nil {
		return err
	}
	dw, err := newGUID()
	if err != nil {
		return err
	}
	err = d.updateHeader(func(h *header) {
		if !d.fileGUIDDone {
			h.FileWriteGUID = fw
		}
		if data && !d.dataGUIDDone {
			h.DataWriteGUID = dw
		}
		h.LogGUID = GUID{}
	})
	if err != nil {
		return err
	}
	d.fileGUIDDone = true
	d.dataGUIDDone = d.dataGUIDDone || data
	return nil
}
