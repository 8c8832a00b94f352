package vhdx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// qemu-img cannot make VHDX differencing images ("Backing file not
// supported for file format 'vhdx'") nor open them, so the oracle here is
// libvhdi (Debian python3-libvhdi, libvhdi-utils), an independent reader
// that follows the parent and checks its identifier. The child is made by
// qemu-img as a dynamic image of the parent's size and turned into a
// differencing one by setting HasParent and adding a parent locator, as
// Hyper-V lays them out; libvhdi must then read it as the parent.

func requirePyvhdi(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import pyvhdi").Run(); err != nil {
		t.Skip("pyvhdi not installed (apt-get install python3-libvhdi)")
	}
}

// pyvhdiRead has libvhdi read the child (with its parent) into out.
func pyvhdiRead(t *testing.T, child, parent, out string) {
	t.Helper()
	const script = `
import sys, pyvhdi
c = pyvhdi.file(); c.open(sys.argv[1])
if sys.argv[2]:
    p = pyvhdi.file(); p.open(sys.argv[2]); c.set_parent(p)
size = c.get_media_size()
with open(sys.argv[3], "wb") as o:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        o.write(c.read_buffer_at_offset(n, off))
        off += n
`
	testutil.Run(t, "/usr/bin/python3", "-c", script, child, parent, out)
}

// locator encodes a VHDX parent locator with the given key/value pairs.
func locator(kv [][2]string) []byte {
	b := make([]byte, 20+12*len(kv))
	copy(b, vhdxParentLocatorType[:])
	binary.LittleEndian.PutUint16(b[18:], uint16(len(kv)))
	put := func(s string) (uint32, uint16) {
		off := uint32(len(b))
		for _, u := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, u)
		}
		return off, uint16(uint32(len(b)) - off)
	}
	for i, p := range kv {
		ko, kl := put(p[0])
		vo, vl := put(p[1])
		e := b[20+12*i:]
		binary.LittleEndian.PutUint32(e, ko)
		binary.LittleEndian.PutUint32(e[4:], vo)
		binary.LittleEndian.PutUint16(e[8:], kl)
		binary.LittleEndian.PutUint16(e[10:], vl)
	}
	return b
}

// makeChild creates child as a differencing image of parent. With
// bitmaps, every chunk gets a zeroed sector bitmap block up front.
func makeChild(t *testing.T, parent, child string, bitmaps bool) {
	t.Helper()
	p := openPath(t, parent, false, vdisk.Options{})
	size, bs, ss, linkage := p.Size(), p.BlockSize(), p.SectorSize(), GUID(p.DataWriteGUID())
	p.Close()
	qemuImg(t, "create", "-f", "vhdx", "-o", fmt.Sprintf("subformat=dynamic,block_size=%d,block_state_zero=off", bs), child, fmt.Sprint(size))

	if ss != 512 {
		setSectorSize(t, child, uint32(ss))
	}
	b := fileBytes(t, child)
	batR, metaR, err := readRegions(vdisk.NewMemFile(child, b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	tab := b[metaR.offset : metaR.offset+metadataTableSize]
	count := int(binary.LittleEndian.Uint16(tab[10:]))
	end := uint32(metadataTableSize)
	for i := range count {
		e := tab[32+32*i:]
		var id GUID
		copy(id[:], e)
		off, n := binary.LittleEndian.Uint32(e[16:]), binary.LittleEndian.Uint32(e[20:])
		end = max(end, off+n)
		if id == fileParametersGUID {
			fp := b[metaR.offset+int64(off):]
			binary.LittleEndian.PutUint32(fp[4:], binary.LittleEndian.Uint32(fp[4:])|paramHasParent)
		}
	}
	end = (end + 4095) / 4096 * 4096
	loc := locator([][2]string{
		{"parent_linkage", "{" + linkage.String() + "}"},
		{"relative_path", `.\` + filepath.Base(parent)},
		{"volume_path", `\\?\Volume{6ee4c3b8-0f61-4e2c-9a1d-1c2d3e4f5a6b}\vms\parent.vhdx`},
		{"absolute_win32_path", `C:\vms\parent.vhdx`},
	})
	copy(b[metaR.offset+int64(end):], loc)
	e := tab[32+32*count:]
	copy(e, parentLocatorGUID[:])
	binary.LittleEndian.PutUint32(e[16:], end)
	binary.LittleEndian.PutUint32(e[20:], uint32(len(loc)))
	binary.LittleEndian.PutUint32(e[24:], 4) // IsRequired
	binary.LittleEndian.PutUint16(tab[10:], uint16(count+1))
	if bitmaps {
		g := geometry{blockSize: bs, chunkRatio: (1 << 23) * ss / bs}
		for c := int64(0); c*g.chunkRatio*bs < size; c++ {
			host := (int64(len(b)) + mib - 1) / mib * mib
			b = append(b, make([]byte, host+sectorBitmapSize-int64(len(b)))...)
			binary.LittleEndian.PutUint64(b[batR.offset+g.bitmapIndex(c*g.chunkRatio)*8:], uint64(makeEntry(sbStatePresent, host)))
		}
	}
	if err := os.WriteFile(child, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setSectorSize makes a qemu-made image (qemu writes only 512-byte
// sectors) one with logical and physical sectors of ss bytes.
func setSectorSize(t *testing.T, path string, ss uint32) {
	t.Helper()
	b := fileBytes(t, path)
	_, metaR, err := readRegions(vdisk.NewMemFile(path, b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	tab := b[metaR.offset:]
	for i := range int(binary.LittleEndian.Uint16(tab[10:])) {
		e := tab[32+32*i:]
		if id := GUID(e[:16]); id == logicalSectorGUID || id == physicalSectorGUID {
			binary.LittleEndian.PutUint32(tab[binary.LittleEndian.Uint32(e[16:]):], ss)
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDifferencing(t *testing.T) {
	requirePyvhdi(t)
	testutil.RequireTool(t, "vhdiinfo", "libvhdi-utils")
	// libvhdi 20210425 reads the sector bitmap of a not-present block even
	// when the chunk has no bitmap block (it reads the file's first bytes
	// as one), so a child without bitmaps is checked by libvhdi only
	// after our writes have given its chunk one.
	cases := []struct {
		name    string
		size    int64
		bs      string
		bitmaps bool
		sector  uint32
	}{
		{"1M-blocks", 48 * mib, "1M", true, 512},
		{"32M-blocks", 40 * mib, "32M", true, 512},
		{"1M-blocks-no-bitmap", 40 * mib, "1M", false, 512},
		{"2M-blocks-4K-sectors", 24 * mib, "2M", true, 4096},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			parentRaw, parent, child := join(dir, "parent.raw"), join(dir, "parent.vhdx"), join(dir, "child.vhdx")
			makeRaw(t, parentRaw, c.size, int64(40+i))
			qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size="+c.bs, parentRaw, parent)
			if c.sector != 512 {
				setSectorSize(t, parent, c.sector)
				info := testutil.Run(t, "vhdiinfo", parent)
				if !strings.Contains(info, "Bytes per sector\t: 4096") {
					t.Fatalf("libvhdi does not see 4096-byte sectors:\n%s", info)
				}
			}
			makeChild(t, parent, child, c.bitmaps)
			parentHash := fileHash(t, parent)
			if os.Getenv("VHDX_KEEP") != "" {
				testutil.CopyFile(t, parent, "/tmp/vhdxw/parent.vhdx")
				testutil.CopyFile(t, child, "/tmp/vhdxw/child.vhdx")
				testutil.CopyFile(t, parentRaw, "/tmp/vhdxw/parent.raw")
			}

			info := testutil.Run(t, "vhdiinfo", child)
			if !strings.Contains(info, "Differential") {
				t.Fatalf("vhdiinfo does not see a differencing image:\n%s", info)
			}
			libvhdi := join(dir, "libvhdi.raw")
			if c.bitmaps {
				pyvhdiRead(t, child, parent, libvhdi)
				sameBytes(t, "libvhdi read of the new child", fileBytes(t, libvhdi), fileBytes(t, parentRaw))
			}

			d := openPath(t, child, false, parentOpener())
			if in := d.Info(); in.Variant != "differencing" || in.Parent != parent {
				t.Errorf("Info = %+v, want differencing with parent %s", in, parent)
			}
			sameBytes(t, "read of the new child", readAll(t, d), fileBytes(t, parentRaw))
			d.Close()

			want := join(dir, "want.raw")
			testutil.CopyFile(t, parentRaw, want)
			for session := range 2 {
				d = openPath(t, child, true, parentOpener())
				ws := writePattern(d.Size(), d.BlockSize(), int64(session*10+i))
				// A whole block, to make one fully present.
				whole := aWrite{d.Size() / d.BlockSize() / 2 * d.BlockSize(), randomBytes(rand.New(rand.NewSource(int64(session))), d.BlockSize())}
				ws = append([]aWrite{whole}, ws...)
				applyWrites(t, d, want, ws)
				sameBytes(t, "our read after writes", readAll(t, d), fileBytes(t, want))
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				pyvhdiRead(t, child, parent, libvhdi)
				sameBytes(t, fmt.Sprintf("libvhdi read after session %d", session), fileBytes(t, libvhdi), fileBytes(t, want))
			}
			if fileHash(t, parent) != parentHash {
				t.Fatal("the parent changed")
			}
			d = openPath(t, child, false, parentOpener())
			states := map[int]int{}
			for b := range d.geo.dataBlocks {
				states[d.bat[d.geo.payloadIndex(b)].state()]++
			}
			if states[statePartiallyPresent] == 0 || states[stateFullyPresent] == 0 || d.bat[d.geo.bitmapIndex(0)].state() != sbStatePresent {
				t.Errorf("block states %v: want partially and fully present blocks and a sector bitmap", states)
			}
			d.Close()
		})
	}
}

// TestDifferencingParentErrors: no way to open parents, a missing
// parent, and a parent changed since the child was made.
func TestDifferencingParentErrors(t *testing.T) {
	dir := t.TempDir()
	parentRaw, parent, child := join(dir, "parent.raw"), join(dir, "parent.vhdx"), join(dir, "child.vhdx")
	makeRaw(t, parentRaw, 16*mib, 3)
	qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "block_size=1M", parentRaw, parent)
	makeChild(t, parent, child, false)

	openErr := func(opts vdisk.Options) error {
		f, err := vdisk.OpenOSFile(child, false)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = Open(f, opts)
		return err
	}
	if err := openErr(vdisk.Options{}); !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), child) {
		t.Errorf("without OpenParent: %v, want ErrParentNotFound naming the child", err)
	}
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	testutil.Run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 1 0 4k", parent)
	err := openErr(parentOpener())
	if !errors.Is(err, vdisk.ErrCorrupt) || !strings.Contains(err.Error(), "DataWriteGuid") {
		t.Errorf("changed parent: %v, want a DataWriteGuid mismatch", err)
	}
	t.Logf("changed parent: %v", err)
	if err := os.Rename(parent, parent+".moved"); err != nil {
		t.Fatal(err)
	}
	err = openErr(parentOpener())
	if !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), `parent.vhdx`) {
		t.Errorf("missing parent: %v, want ErrParentNotFound naming parent.vhdx", err)
	}
	t.Logf("missing parent: %v", err)
}
