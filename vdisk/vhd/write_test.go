package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestWriteCheckedByQemu writes a pattern into qemu-made images, closes
// them, and has qemu-img (and libvhdi where present) read them back against
// a raw disk with the same writes.
func TestWriteCheckedByQemu(t *testing.T) {
	requireQemu(t)
	for _, sub := range []string{"dynamic", "fixed"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			vhdPath := filepath.Join(dir, "disk.vhd")
			makeRaw(t, rawPath, 64*MiB, 2)
			qemuConvert(t, rawPath, vhdPath, sub)
			before := fileSize(t, vhdPath)

			d := openPath(t, vhdPath, true)
			if ro := d.Info().ReadOnly; ro != "" {
				t.Fatalf("writable open says read-only: %s", ro)
			}
			applyPattern(t, d, rawPath, pattern, 3)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}

			qemuCompare(t, vhdPath, rawPath)
			t.Log(testutil.Run(t, "qemu-img", "info", "-f", "vpc", vhdPath))
			after := fileSize(t, vhdPath)
			if sub == "fixed" && after != before {
				t.Fatalf("fixed image changed size: %d -> %d", before, after)
			}
			if sub == "dynamic" {
				assertFooters(t, vhdPath)
				if after%512 != 0 {
					t.Fatalf("file size %d is not whole sectors", after)
				}
			}
			if testing.Short() {
				return
			}
			requirePyvhdi(t)
			testutil.Run(t, "cmp", vhdiRead(t, vhdPath), rawPath)
		})
	}
}

// assertFooters checks, byte for byte, that the footer copy at offset 0 is
// the footer at the end (the spec requires them identical).
func assertFooters(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:512], b[len(b)-512:]) {
		t.Fatalf("%s: footer copy at 0 differs from the footer at the end", path)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestReadOnlyWritesNothing: without Writable, WriteAt fails with
// ErrReadOnly and the file keeps every byte.
func TestReadOnlyWritesNothing(t *testing.T) {
	requireQemu(t)
	for _, sub := range []string{"dynamic", "fixed"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			vhdPath := filepath.Join(dir, "disk.vhd")
			makeRaw(t, rawPath, 8*MiB, 4)
			qemuConvert(t, rawPath, vhdPath, sub)
			orig, _ := os.ReadFile(vhdPath)
			d := openPath(t, vhdPath, false)
			_, err := d.WriteAt([]byte("x"), 4*MiB)
			mustErr(t, err, vdisk.ErrReadOnly, vhdPath)
			d.Close()
			now, _ := os.ReadFile(vhdPath)
			if !bytes.Equal(orig, now) {
				t.Fatal("a read-only open changed the file")
			}
		})
	}
}

// countingFile counts the bytes written through it.
type countingFile struct {
	vdisk.File
	written, writes int64
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	c.written += int64(len(p))
	c.writes++
	return c.File.WriteAt(p, off)
}

// TestWriteCostFollowsChange writes 10 MiB into a 100 GiB dynamic image and
// checks the host bytes written stay near 10 MiB: commit cost grows with
// the change, never with the image.
func TestWriteCostFollowsChange(t *testing.T) {
	requireQemu(t)
	path := filepath.Join(t.TempDir(), "big.vhd")
	testutil.Run(t, "qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", path, "100G")
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{File: f}
	d, err := Open(cf, vdisk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{0xa5}, 1*MiB)
	for i := int64(0); i < 10; i++ {
		if _, err := d.WriteAt(buf, i*7*1024*MiB+12345); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Ten 1 MiB writes across eleven blocks: data, bitmaps, BAT entries,
	// footers; block zeroing comes from growing the file, not writing.
	limit := int64(10*MiB + 11*(512+4+512))
	if cf.written > limit {
		t.Fatalf("wrote %d host bytes for 10 MiB of data (limit %d)", cf.written, limit)
	}
	t.Logf("10 MiB into a 100 GiB image: %d host bytes in %d writes", cf.written, cf.writes)
	// qemu reads the result: every written run is there, zeros before it.
	for i := int64(0); i < 10; i++ {
		at := i*7*1024*MiB + 12345
		out := testutil.Run(t, "qemu-io", "-f", "vpc", "-r",
			"-c", fmt.Sprintf("read -P 0xa5 %d %d", at, MiB),
			"-c", fmt.Sprintf("read -P 0 %d 12345", at-12345), path)
		if strings.Contains(out, "failed") {
			t.Fatalf("qemu-io at %d: %s", at, out)
		}
	}
}

func TestWriteOutOfRange(t *testing.T) {
	requireQemu(t)
	path := filepath.Join(t.TempDir(), "d.vhd")
	testutil.Run(t, "qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", path, "4M")
	d := openPath(t, path, true)
	_, err := d.WriteAt(make([]byte, 1024), 4*MiB-512)
	if !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Fatalf("write past end: %v", err)
	}
}

// TestSavedStateIsReadOnly: an image saved with its VM suspended refuses
// writes even when opened writable, and says why.
func TestSavedStateIsReadOnly(t *testing.T) {
	b := smallDynamic(t)
	b[84], b[len(b)-512+84] = 1, 1
	fixSums(b)
	d, err := Open(vdisk.NewMemFile("/images/saved.vhd", b), vdisk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if ro := d.Info().ReadOnly; !strings.Contains(ro, "saved state") {
		t.Fatalf("ReadOnly = %q", ro)
	}
	_, err = d.WriteAt([]byte{1}, 0)
	mustErr(t, err, vdisk.ErrReadOnly, "/images/saved.vhd", "saved state")
}

// TestDynamicClearBits: in a dynamic image a sector whose bitmap bit is
// clear holds no data and reads as zeros, whatever bytes stand there. The
// bits of sectors 0-7 of a qemu-made block are cleared by hand over stale
// data; a write into sectors 3-7 (starting mid-sector) must zero the rest
// of sector 3 rather than expose the stale bytes. libvhdi is the oracle.
func TestDynamicClearBits(t *testing.T) {
	requireQemu(t)
	requirePyvhdi(t)
	b := smallDynamic(t) // 0x11 at 0..4 KiB, 0x22 at 4 MiB..+4 KiB
	batOff := binary.BigEndian.Uint64(b[512+16:])
	blk0 := int64(binary.BigEndian.Uint32(b[batOff:])) * 512
	b[blk0] = 0 // sectors 0-7 hold no data
	dir := t.TempDir()
	path := filepath.Join(dir, "d.vhd")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 8*MiB)
	copy(want[4*MiB:], bytes.Repeat([]byte{0x22}, 4096))
	wantPath := filepath.Join(dir, "want.raw")
	os.WriteFile(wantPath, want, 0o644)
	testutil.Run(t, "cmp", vhdiRead(t, path), wantPath)
	assertSame(t, openPath(t, path, false), wantPath)

	d := openPath(t, path, true)
	applyPattern(t, d, wantPath, []write{{off: 3*512 + 100, n: 4096 - 3*512 - 100}}, 17)
	d.Close()
	testutil.Run(t, "cmp", vhdiRead(t, path), wantPath)
	assertSame(t, openPath(t, path, false), wantPath)
}
