package vhd

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// qemu-img cannot create differencing VHDs, so the tests make one the way
// a writer would: qemu-img makes an empty dynamic image of the parent's
// size, and this turns it into a child of parent (disk type 4, the
// parent's unique id and time stamp, its name, and locators). libvhdi
// (pyvhdi) then proves the result is a differencing image it can read.

type locatorSpec struct {
	code string // "W2ru", "W2ku", "MacX"
	path string
}

func encodeLocator(code, path string) []byte {
	if code == "MacX" {
		return []byte("file://localhost" + path)
	}
	var b []byte
	for _, u := range utf16.Encode([]rune(path)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

func makeDifferencing(t *testing.T, parent, child, parentName string, locs []locatorSpec) {
	t.Helper()
	requireQemu(t)
	pb, err := os.ReadFile(parent)
	if err != nil {
		t.Fatal(err)
	}
	pft, err := parseFooter(pb[len(pb)-512:])
	if err != nil {
		t.Fatalf("parent footer: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.raw")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(empty, int64(pft.CurrentSize)); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "empty.vhd")
	qemuConvert(t, empty, base, "dynamic")
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := parseFooter(b[:512])
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(b[ft.DataOffset : ft.DataOffset+headerSize])
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), b[:len(b)-512]...)
	h.ParentUniqueID = pft.UniqueID
	h.ParentTimeStamp = pft.TimeStamp
	clear(h.ParentName[:])
	for i, u := range utf16.Encode([]rune(parentName)) {
		binary.BigEndian.PutUint16(h.ParentName[2*i:], u)
	}
	for i, l := range locs {
		data := encodeLocator(l.code, l.path)
		space := roundUp(int64(len(data)), 512)
		at := int64(len(out))
		out = append(out, make([]byte, space)...)
		copy(out[at:], data)
		h.Locators[i] = locatorEntry{PlatformDataSpace: uint32(space), PlatformDataLen: uint32(len(data)), PlatformDataOff: uint64(at)}
		copy(h.Locators[i].PlatformCode[:], l.code)
	}
	var hb bytes.Buffer
	h.Checksum = 0
	binary.Write(&hb, binary.BigEndian, &h)
	hraw := hb.Bytes()
	binary.BigEndian.PutUint32(hraw[headerChecksumField:], checksum(hraw, headerChecksumField))
	copy(out[ft.DataOffset:], hraw)

	ft.DiskType = diskDifferencing
	ft.UniqueID[0] ^= 0x5a // a child has its own id
	ft.UniqueID[15] ^= 0xa5
	var fb bytes.Buffer
	binary.Write(&fb, binary.BigEndian, &ft)
	fraw := fb.Bytes()
	binary.BigEndian.PutUint32(fraw[footerChecksumField:], checksum(fraw, footerChecksumField))
	copy(out, fraw)
	out = append(out, fraw...)
	if err := os.WriteFile(child, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setUniqueID rewrites a VHD's unique id in both footers.
func setUniqueID(t *testing.T, path string, id [16]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, len(b) - 512} {
		f := b[at : at+512]
		if !bytes.HasPrefix(f, footerCookie) {
			continue
		}
		copy(f[68:84], id[:])
		binary.BigEndian.PutUint32(f[footerChecksumField:], checksum(f, footerChecksumField))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
