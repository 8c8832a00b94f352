package vhdx

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/vdisk"
)

// TestDamagedStructures damages one structure at a time in a qemu-made
// image. A damaged copy of a doubled structure (header, region table)
// must be survived, as qemu survives it; anything else must be refused
// with an error that says what is wrong.
func TestDamagedStructures(t *testing.T) {
	dir := t.TempDir()
	rawPath, good := join(dir, "disk.raw"), join(dir, "good.vhdx")
	makeRaw(t, rawPath, 16*mib, 9)
	qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", rawPath, good)
	b := fileBytes(t, good)
	mf := vdisk.NewMemFile(good, b)
	_, slot, _ := readHeaders(mf)
	batR, metaR, err := readRegions(mf, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	cur, other := int64(headerOffset1), int64(headerOffset2)
	if slot == 1 {
		cur, other = other, cur
	}
	firstAllocated := func(b []byte) int64 {
		for i := int64(0); i < 16; i++ {
			if batEntry(binary.LittleEndian.Uint64(b[batR.offset+i*8:])).state() == stateFullyPresent {
				return batR.offset + i*8
			}
		}
		t.Fatal("no allocated block")
		return 0
	}
	metaItem := func(b []byte, id GUID) int64 {
		for i := int64(0); i < 16; i++ {
			e := b[metaR.offset+32+32*i:]
			if GUID(e[:16]) == id {
				return metaR.offset + int64(binary.LittleEndian.Uint32(e[16:]))
			}
		}
		t.Fatalf("no metadata item %s", id)
		return 0
	}
	cases := []struct {
		name    string
		damage  func(b []byte) []byte
		wantErr error
		msg     string // in the error
	}{
		{"current header", func(b []byte) []byte { b[cur+100]++; return b }, nil, ""},
		{"other header", func(b []byte) []byte { b[other+8]++; return b }, nil, ""},
		{"both headers", func(b []byte) []byte { b[cur+100]++; b[other+100]++; return b }, vdisk.ErrCorrupt, "no valid header"},
		// [MS-VHDX] 2.2.3 keeps a second region table for this; qemu 7.2
		// does not fall back to it and refuses the image.
		{"first region table", func(b []byte) []byte { b[regionOffset1+40]++; return b }, nil, "qemu refuses"},
		{"both region tables", func(b []byte) []byte { b[regionOffset1+40]++; b[regionOffset2+40]++; return b }, vdisk.ErrCorrupt, "checksum mismatch"},
		{"identifier", func(b []byte) []byte { copy(b, "vhdxfilf"); return b }, vdisk.ErrCorrupt, "identifier"},
		{"BAT past end", func(b []byte) []byte {
			at := firstAllocated(b)
			binary.LittleEndian.PutUint64(b[at:], uint64(makeEntry(stateFullyPresent, 1<<40)))
			return b
		}, vdisk.ErrCorrupt, "past the end of the file"},
		{"BAT state", func(b []byte) []byte { b[firstAllocated(b)] = 4; return b }, vdisk.ErrCorrupt, "unknown payload block state"},
		{"block size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[metaItem(b, fileParametersGUID):], 3*mib)
			return b
		}, vdisk.ErrCorrupt, "block size"},
		{"sector size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[metaItem(b, logicalSectorGUID):], 1000)
			return b
		}, vdisk.ErrCorrupt, "logical sector size"},
		{"huge disk", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[metaItem(b, virtualDiskSizeGUID):], 1<<62)
			return b
		}, vdisk.ErrCorrupt, "virtual disk size"},
		{"unknown required item", func(b []byte) []byte {
			e := b[metaR.offset+32:]
			e[0]++ // the first item becomes one nobody knows
			binary.LittleEndian.PutUint32(e[24:], 4)
			return b
		}, vdisk.ErrUnsupported, "unknown"},
		{"truncated", func(b []byte) []byte { return b[:batR.offset+4096] }, vdisk.ErrCorrupt, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := join(t.TempDir(), "d.vhdx")
			if err := os.WriteFile(img, c.damage(append([]byte(nil), b...)), 0o644); err != nil {
				t.Fatal(err)
			}
			f, _ := vdisk.OpenOSFile(img, false)
			d, err := Open(f, vdisk.Options{})
			qemuOut, qemuErr := exec.Command("qemu-img", "info", "-f", "vhdx", img).CombinedOutput()
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				sameBytes(t, "read despite damage", readAll(t, d), fileBytes(t, rawPath))
				d.Close()
				if qemuErr != nil && c.msg != "qemu refuses" {
					t.Errorf("qemu-img disagrees, it refuses: %s", qemuOut)
				}
				return
			}
			f.Close()
			if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), img) {
				t.Fatalf("open: %v; want %v naming the file and %q", err, c.wantErr, c.msg)
			}
			t.Logf("%v (qemu-img: %s)", err, strings.TrimSpace(string(qemuOut)))
		})
	}
}

// TestOverlapRefusedForWriting: a block pointing into the metadata region
// can be read, but writing through it would damage the metadata.
func TestOverlapRefusedForWriting(t *testing.T) {
	dir := t.TempDir()
	img := join(dir, "d.vhdx")
	qemuImg(t, "create", "-f", "vhdx", "-o", "block_size=1M", img, "8M")
	b := fileBytes(t, img)
	batR, metaR, err := readRegions(vdisk.NewMemFile(img, b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[batR.offset+8:], uint64(makeEntry(stateFullyPresent, metaR.offset)))
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	openPath(t, img, false, vdisk.Options{}).Close()
	f, _ := vdisk.OpenOSFile(img, true)
	defer f.Close()
	_, err = Open(f, vdisk.Options{Writable: true})
	if !errors.Is(err, vdisk.ErrCorrupt) || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("writable open: %v, want an overlap error", err)
	}
	t.Log(err)
}
