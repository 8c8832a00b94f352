package ntfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// memDev is a volume.Device in memory.
type memDev struct{ b []byte }

func (m *memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, io.ErrShortWrite
	}
	return copy(m.b[off:], p), nil
}

func (m *memDev) Size() int64 { return int64(len(m.b)) }

// exercise walks everything a mount would touch, with bounded effort.
func exercise(v *Volume) {
	seen := 0
	var walk func(dir volume.Ino, depth int)
	walk = func(dir volume.Ino, depth int) {
		ents, err := v.ReadDir(dir)
		if err != nil || depth > 8 {
			return
		}
		buf := make([]byte, 4096)
		for _, e := range ents {
			if seen++; seen > 200 {
				return
			}
			a, err := v.Lookup(dir, e.Name)
			if err != nil {
				continue
			}
			v.ReadAt(a.Ino, buf, 0)
			v.ReadAt(a.Ino, buf, a.Size/2)
			v.Readlink(a.Ino)
			if names, err := v.ListXattr(a.Ino); err == nil {
				for _, n := range names {
					v.GetXattr(a.Ino, n)
				}
			}
			if a.Mode.IsDir() && a.Ino != dir {
				walk(a.Ino, depth+1)
			}
		}
	}
	walk(v.Root(), 0)
	v.StatFS()
}

// FuzzOpen patches bytes into a real volume (the boot sector, $MFT
// records, anywhere) and opens and walks it: errors are fine, panics and
// hangs are not.
func FuzzOpen(f *testing.F) {
	base, err := os.ReadFile(testutil.Corpus(f, "ntfs/testfs1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, uint32(0))
	f.Add(base[:512], uint32(0))
	mft := binary.LittleEndian.Uint64(base[0x30:]) * uint64(base[0x0d]) * uint64(binary.LittleEndian.Uint16(base[0x0b:]))
	f.Add(base[mft:mft+1024], uint32(mft))
	f.Add(base[mft+5*1024:mft+6*1024], uint32(mft+5*1024))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, uint32(mft+0x1c0))
	f.Fuzz(func(t *testing.T, patch []byte, at uint32) {
		img := bytes.Clone(base)
		off := int(at) % len(img)
		copy(img[off:], patch)
		v, err := Open(&memDev{img}, Options{ReadOnly: true})
		if err != nil {
			return
		}
		exercise(v)
	})
}

// FuzzRunlist decodes mapping pairs; what decodes must encode back to
// the same runs.
func FuzzRunlist(f *testing.F) {
	f.Add([]byte{0x21, 0x10, 0x00, 0x01, 0x00})
	f.Add([]byte{0x31, 0x08, 0x10, 0x27, 0x00, 0x01, 0x04, 0x21, 0x02, 0xf0, 0xfe, 0x00})
	f.Add([]byte{0x11, 0x30, 0x60, 0x21, 0x10, 0x00, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		runs, err := decodeRuns(b, 0, 0)
		if err != nil {
			return
		}
		again, err := decodeRuns(encodeRuns(runs), 0, 0)
		if err != nil {
			t.Fatalf("re-decoding our encoding: %v", err)
		}
		if len(again) != len(runs) {
			t.Fatalf("round trip: %v became %v", runs, again)
		}
		for i := range runs {
			if runs[i] != again[i] {
				t.Fatalf("round trip: %v became %v", runs, again)
			}
		}
	})
}

// FuzzIndex parses an index node (as an INDX block when it carries the
// magic) and looks names up in it; what parses must serialise back to a
// node with the same entries.
func FuzzIndex(f *testing.F) {
	key := newFileName(5, "hello.txt", 0x20, nsWin32)
	node := &wnode{vcn: 0, entries: []wentry{{ref: 64, key: key, child: -1}}, endChild: -1}
	eb := entriesBytes(node)
	hdr := make([]byte, 16)
	binary.LittleEndian.PutUint32(hdr, 16)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(16+len(eb)))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(16+len(eb)))
	f.Add(append(hdr, eb...))
	f.Add([]byte("INDX(\x00\x09\x00"))
	up := new(upcaseTable)
	for i := range up {
		up[i] = uint16(i)
		if i >= 'a' && i <= 'z' {
			up[i] = uint16(i - 32)
		}
	}
	v := &Volume{up: upcaseOf(up), cache: newCache(1024)}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 4096 && string(b[:4]) == "INDX" {
			blk := bytes.Clone(b[:4096])
			if applyFixup(blk, "INDX") != nil {
				return
			}
			b = blk[0x18:]
		}
		// the commit summary's light read of an unchanged leaf must
		// agree with the whole parse wherever both read the node
		light := lightLeaf(append(make([]byte, 0x18), b...), 0, func(volume.Ino) bool { return false })
		n, err := parseIndexNode(b, 0)
		if err != nil {
			return
		}
		if light != nil {
			if !n.leaf || len(light.entries) != len(n.entries) {
				t.Fatalf("light read: %d entries (leaf %v), whole parse %d", len(light.entries), n.leaf, len(n.entries))
			}
			for i, e := range light.entries {
				if e.ref != n.entries[i].ref || e.flags != n.entries[i].flags {
					t.Fatalf("light read entry %d: ref %x flags %x, whole parse %x %x", i, e.ref, e.flags, n.entries[i].ref, n.entries[i].flags)
				}
			}
		}
		di := &dirIndex{ino: 99, root: n, blockSize: 4096}
		v.lookupEntry(di, encodeName("hello.txt"))
		v.walkIndex(di, func(*indexEntry) error { return nil })
		w := toWNode(n)
		eb := entriesBytes(w)
		hdr := make([]byte, 16, 16+len(eb))
		binary.LittleEndian.PutUint32(hdr, 16)
		binary.LittleEndian.PutUint32(hdr[4:], uint32(16+len(eb)))
		again, err := parseIndexNode(append(hdr, eb...), 0)
		if err != nil {
			t.Fatalf("re-parsing our serialisation: %v", err)
		}
		if len(again.entries) != len(n.entries) {
			t.Fatalf("round trip: %d entries became %d", len(n.entries), len(again.entries))
		}
	})
}
