package ntfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// rawUpcase is an $UpCase table as on disk: Unicode's simple upper case,
// with the code units in change mapped to themselves.
func rawUpcase(change ...uint16) *[upcaseBytes]byte {
	raw := new([upcaseBytes]byte)
	for i := range 65536 {
		u := uint16(i)
		if r := unicode.ToUpper(rune(i)); r <= 0xffff {
			u = uint16(r)
		}
		binary.LittleEndian.PutUint16(raw[2*i:], u)
	}
	for _, c := range change {
		binary.LittleEndian.PutUint16(raw[2*int(c):], c)
	}
	return raw
}

// Volumes with the same $UpCase bytes share one decoded table; a table
// differing in one code unit gets its own, decoded from its own bytes.
func TestInternUpcaseSharesEqualTables(t *testing.T) {
	a1, a2 := internUpcase(rawUpcase()), internUpcase(rawUpcase())
	if a1 != a2 {
		t.Fatal("two volumes with the same $UpCase table hold two copies")
	}
	b := internUpcase(rawUpcase('q'))
	if b == a1 {
		t.Fatal("a table differing in one code unit was taken for another")
	}
	if a1['q'] != 'Q' || b['q'] != 'q' || b['a'] != 'A' || a1[0xe4] != 0xc4 {
		t.Fatalf("decoded wrong: a['q']=%#x b['q']=%#x b['a']=%#x a[0xe4]=%#x", a1['q'], b['q'], b['a'], a1[0xe4])
	}
	if upcaseOf(a1).collate([]uint16{'w', 'i', 'n'}, []uint16{'W', 'I', 'N'}) != 0 || upcaseOf(b).collate([]uint16{'q'}, []uint16{'Q'}) == 0 {
		t.Fatal("collation does not follow the tables")
	}
}

// spanDev records the device reads that touch [lo, hi).
type spanDev struct {
	volume.Device
	lo, hi int64
	hits   atomic.Int64
}

func (d *spanDev) ReadAt(p []byte, off int64) (int, error) {
	if off < d.hi && d.lo < off+int64(len(p)) {
		d.hits.Add(1)
	}
	return d.Device.ReadAt(p, off)
}

// TestUpcaseFromVolume: collation follows the volume's own $UpCase, in
// its first part (read at open) and in the rest (read when a name with a
// high code unit is first folded), for tables that differ from Unicode's:
// ntfs-3g, which collates with the volume's table too, creates the names
// in an index of several blocks, and each is found by ntfs-3g after a
// remount and by this package; the rest of the table is not read while
// only low names are looked up, and with Unicode's table in place of the
// volume's the changed names are not found (the test can fail). A name
// this package creates is found by ntfs-3g.
func TestUpcaseFromVolume(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "icat", "sleuthkit")
	cases := []struct {
		name   string
		change map[uint16]uint16 // code unit -> upper case
		odd    []string          // names the change moves in the index
	}{
		// U+4E00 folds below every other name: its names come first
		{"high", map[uint16]uint16{0x4e00: 0x0001}, []string{"\u4e00first", "\u4e00\u4e00", "zz\u4e00"}},
		// é and É fold below every other name, as no Unicode table does
		// (ntfs-3g refuses a table whose ASCII part is not the usual one)
		{"low", map[uint16]uint16{0xe9: 0x0001, 0xc9: 0x0001}, []string{"\u00e9file", "\u00c9cole", "zz\u00e9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := mkntfsImage(t, t.TempDir(), 16, 4096)
			upOff := patchUpcase(t, img, c.change)
			mnt, unmount := mount3g(t, img)
			var names []string
			for i := range 400 { // enough for an index of several blocks
				names = append(names, fmt.Sprintf("file-%03d-with-a-longer-name", i))
			}
			names = append(names, c.odd...)
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(mnt, n), []byte(n), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			unmount()
			mnt, unmount = mount3g(t, img, "ro")
			for _, n := range c.odd {
				if _, err := os.Stat(filepath.Join(mnt, n)); err != nil {
					t.Fatalf("ntfs-3g after a remount: %v", err)
				}
			}
			unmount()

			dev := &spanDev{Device: openDev(t, img, 0), lo: upOff + 2*upcaseLow, hi: upOff + upcaseBytes}
			v, err := Open(dev, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names[:400] {
				mustResolve(t, v, n)
			}
			if c.name == "high" && dev.hits.Load() != 0 {
				t.Errorf("the rest of $UpCase read %d times before a high name was folded", dev.hits.Load())
			}
			for _, n := range c.odd {
				mustResolve(t, v, n)
				if _, err := resolve(v, strings.ToUpper(n)); err != nil && c.name == "high" {
					t.Errorf("%s in upper case: %v", n, err)
				}
			}
			if c.name == "high" && dev.hits.Load() == 0 {
				t.Error("a high name was found without reading the rest of $UpCase")
			}

			// the first fold of a high name by readers at once: each finds
			// every name (the rest read once, under -race)
			p := openVol(t, img, 0, Options{ReadOnly: true})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, n := range c.odd {
						if _, err := resolve(p, n); err != nil {
							t.Errorf("parallel reader: %s: %v", n, err)
						}
					}
				}()
			}
			wg.Wait()

			u := openVol(t, img, 0, Options{ReadOnly: true})
			u.up = unicodeUpcase()
			for _, n := range c.odd[:1] {
				if _, err := resolve(u, n); err == nil {
					t.Errorf("%s found with Unicode's table in place of the volume's: the test cannot fail", n)
				}
			}

			// a write whose first fold is of a changed entry: the name is
			// inserted where the volume's table puts it, so that ntfs-3g
			// finds it, and the volume stays consistent for ntfsresize
			w := openVol(t, img, 0, Options{})
			created := c.odd[0] + "-new"
			if _, err := w.Create(w.Root(), created, 0o644); err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, img)
			mnt, unmount = mount3g(t, img, "ro")
			for _, n := range append([]string{created}, c.odd...) {
				if _, err := os.Stat(filepath.Join(mnt, n)); err != nil {
					t.Errorf("ntfs-3g after this package's create: %v", err)
				}
			}
			unmount()
		})
	}
}

// patchUpcase changes img's $UpCase table (as sleuthkit's icat reads it,
// found in the image by its bytes) and returns its offset in img.
func patchUpcase(t *testing.T, img string, change map[uint16]uint16) int64 {
	t.Helper()
	table, err := exec.Command("icat", img, "10").Output()
	if err != nil || len(table) != upcaseBytes {
		t.Fatalf("icat $UpCase: %d bytes, %v", len(table), err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(raw, table)
	if off < 0 || bytes.Index(raw[off+1:], table) >= 0 {
		t.Fatalf("$UpCase found at %d in the image, want once", off)
	}
	for c, u := range change {
		binary.LittleEndian.PutUint16(raw[off+2*int(c):], u)
	}
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(off)
}
