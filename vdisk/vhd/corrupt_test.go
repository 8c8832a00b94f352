package vhd

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// smallDynamic is an 8 MiB dynamic VHD made by qemu with two blocks
// allocated (the first and the third).
func smallDynamic(t *testing.T) []byte {
	t.Helper()
	requireQemu(t)
	path := filepath.Join(t.TempDir(), "small.vhd")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", path, "8M")
	testutil.Run(t, "qemu-io", "-f", "vpc", "-c", "write -P 0x11 0 4k", "-c", "write -P 0x22 4M 4k", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixSums recomputes the footer checksums (both copies) and the header's.
func fixSums(b []byte) {
	for _, at := range []int{0, len(b) - 512} {
		f := b[at : at+512]
		binary.BigEndian.PutUint32(f[footerChecksumField:], checksum(f, footerChecksumField))
	}
	h := b[512 : 512+headerSize]
	binary.BigEndian.PutUint32(h[headerChecksumField:], checksum(h, headerChecksumField))
}

// setFooter sets a big-endian field of both footers.
func setFooter32(b []byte, field int, v uint32) {
	binary.BigEndian.PutUint32(b[field:], v)
	binary.BigEndian.PutUint32(b[len(b)-512+field:], v)
}

func setFooter64(b []byte, field int, v uint64) {
	binary.BigEndian.PutUint64(b[field:], v)
	binary.BigEndian.PutUint64(b[len(b)-512+field:], v)
}

// TestCorruptImages: every broken structure is refused with an error that
// names the file and wraps the right cause; nothing panics or allocates
// what the file cannot hold.
func TestCorruptImages(t *testing.T) {
	good := smallDynamic(t)
	batOff := int(binary.BigEndian.Uint64(good[512+16:]))
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		want   error // nil: opens
	}{
		{"intact", func(b []byte) []byte { return b }, nil},
		{"both footers' checksums wrong", func(b []byte) []byte {
			b[100]++
			b[len(b)-412]++
			return b
		}, vdisk.ErrCorrupt},
		{"end footer wrong, copy good", func(b []byte) []byte { b[len(b)-412]++; return b }, nil},
		{"end footer gone", func(b []byte) []byte { return b[:len(b)-512] }, nil},
		{"header checksum wrong", func(b []byte) []byte { b[512+100]++; return b }, vdisk.ErrCorrupt},
		{"header cookie wrong", func(b []byte) []byte { b[512] = 'x'; fixSums(b); return b }, vdisk.ErrCorrupt},
		{"header past end", func(b []byte) []byte { setFooter64(b, 16, 1<<40); fixSums(b); return b }, vdisk.ErrCorrupt},
		{"disk type 5", func(b []byte) []byte { setFooter32(b, 60, 5); fixSums(b); return b }, vdisk.ErrUnsupported},
		{"block size 3000", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+32:], 3000)
			fixSums(b)
			return b
		}, vdisk.ErrUnsupported},
		{"too few BAT entries", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[512+28:], 1)
			fixSums(b)
			return b
		}, vdisk.ErrCorrupt},
		{"huge disk, BAT past end", func(b []byte) []byte {
			setFooter64(b, 48, 1<<50)
			binary.BigEndian.PutUint32(b[512+28:], 0xffffffff)
			fixSums(b)
			return b
		}, vdisk.ErrCorrupt},
		{"BAT entry past end", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batOff+4:], 0x7fffffff)
			return b
		}, vdisk.ErrCorrupt},
		{"BAT entry into metadata", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batOff+4:], 1)
			return b
		}, vdisk.ErrCorrupt},
		{"two blocks overlap", func(b []byte) []byte {
			copy(b[batOff+8:batOff+12], b[batOff:batOff+4])
			return b
		}, vdisk.ErrCorrupt},
		{"fixed bigger than file", func(b []byte) []byte {
			setFooter32(b, 60, diskFixed)
			setFooter64(b, 48, 1<<30)
			fixSums(b)
			return b
		}, vdisk.ErrCorrupt},
		{"cut after header", func(b []byte) []byte { return b[:1536] }, vdisk.ErrCorrupt},
		{"cut to 100 bytes", func(b []byte) []byte { return b[:100] }, vdisk.ErrCorrupt},
		{"empty", func(b []byte) []byte { return nil }, vdisk.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(append([]byte(nil), good...))
			f := vdisk.NewMemFile("/images/broken.vhd", b)
			d, err := Open(f, vdisk.Options{})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				buf := make([]byte, 8*MiB)
				if _, err := d.ReadAt(buf, 0); err != nil {
					t.Fatal(err)
				}
				if buf[0] != 0x11 || buf[4*MiB] != 0x22 || buf[4096] != 0 {
					t.Fatal("content differs from what qemu-io wrote")
				}
				return
			}
			mustErr(t, err, tc.want, "/images/broken.vhd")
			t.Log(err)
		})
	}
}

// TestRepairsDamagedEndFooter: an image whose end footer is damaged opens
// from the copy, and the first new block puts a good footer at the end;
// qemu-img then reads it.
func TestRepairsDamagedEndFooter(t *testing.T) {
	b := smallDynamic(t)
	b[len(b)-412]++
	path := filepath.Join(t.TempDir(), "d.vhd")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d := openPath(t, path, true)
	if p := d.Info().Problems; len(p) != 1 || !strings.Contains(p[0], "footer at the end of the file is damaged") {
		t.Errorf("Info().Problems = %q; want the damaged footer named", p)
	}
	if _, err := d.WriteAt([]byte{0x33}, 6*MiB); err != nil {
		t.Fatal(err)
	}
	d.Close()
	assertFooters(t, path)
	testutil.Run(t, "qemu-io", "-f", "vpc", "-r", "-c", "read -P 0x33 6291456 1", "-c", "read -P 0x22 4M 4k", path)
}

func TestMatch(t *testing.T) {
	good := smallDynamic(t)
	fixed := append(make([]byte, 4096), good[len(good)-512:]...)
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"dynamic", good, true},
		{"footer at end only", append(make([]byte, 4096), good[:512]...), true},
		{"old 511-byte footer", fixed[:len(fixed)-1], true},
		{"raw zeros", make([]byte, 8192), false},
		{"tiny", []byte("conect"), false},
		{"empty", nil, false},
	} {
		if got := Match(vdisk.NewMemFile("x", tc.b)); got != tc.want {
			t.Errorf("%s: Match = %v", tc.name, got)
		}
	}
}

var _ = errors.Is
