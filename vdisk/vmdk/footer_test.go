package vmdk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zlib"
)

// streamAtEnd builds a streamOptimized file as VMware writes it (qemu-img
// never puts the grain directory at the end): header with gdOffset
// GD_AT_END, one compressed grain, a GT and GD each after its marker,
// footer marker, footer header, end-of-stream marker. 64 sectors, 4 KiB
// grains, 4 entries per table.
func streamAtEnd(t testing.TB, grain []byte) []byte {
	t.Helper()
	put := func(b []byte, off int, v any) {
		if _, err := binary.Encode(b[off:], binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (sector-len(b)%sector)%sector)...) }
	marker := func(sectors uint64, kind uint32) []byte {
		m := make([]byte, sector)
		put(m, 0, sectors)
		put(m, 12, kind)
		return m
	}
	h := header{Magic: magicKDMV, Version: 3, Flags: flagNewlineTest | flagCompressed | flagMarkers,
		Capacity: 64, GrainSize: 8, DescriptorOffset: 1, DescriptorSize: 1, NumGTEsPerGT: 4,
		GDOffset: gdAtEnd, OverHead: 2, SingleEndLineChar: '\n', NonEndLineChar: ' ',
		DoubleEndLineChar1: '\r', DoubleEndLineChar2: '\n', CompressAlgorithm: compressDeflate}
	b := make([]byte, 2*sector)
	put(b, 0, h)
	copy(b[sector:], "# Disk DescriptorFile\nCID=abcdef01\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\nRDONLY 64 SPARSE \"s.vmdk\"\n")

	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(grain)
	zw.Close()
	grainSec := uint32(len(b) / sector)
	g := make([]byte, 12)
	put(g, 0, uint64(8)) // LBA of grain 1
	put(g, 8, uint32(z.Len()))
	b = append(b, pad(append(g, z.Bytes()...))...)

	gtSec := uint32(len(b)/sector + 1)
	gt := make([]byte, sector)
	put(gt, 0, []uint32{0, grainSec, 0, 0})
	b = append(append(b, marker(1, markerGT)...), gt...)
	gdSec := uint64(len(b)/sector + 1)
	gd := make([]byte, sector)
	put(gd, 0, []uint32{gtSec, 0})
	b = append(append(b, marker(1, markerGD)...), gd...)
	foot := make([]byte, sector)
	h.GDOffset = gdSec
	put(foot, 0, h)
	b = append(append(b, marker(1, markerFooter)...), foot...)
	return append(b, make([]byte, sector)...) // end of stream
}

// TestStreamFooter reads a grain directory found through the footer and
// compares with what qemu-img reads from the same file.
func TestStreamFooter(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "s.vmdk")
	if err := os.WriteFile(img, streamAtEnd(t, bytes.Repeat([]byte("stream!!"), 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "s.raw")
	qemuImg(t, "convert", "-f", "vmdk", "-O", "raw", img, want)
	d := openDisk(t, img, true)
	defer d.Close()
	if ro := d.Info().ReadOnly; ro != "streamOptimized VMDK is read-only" {
		t.Errorf("ReadOnly = %q", ro)
	}
	compareDisk(t, d, want)
}
