package mount

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

type memDev []byte

func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestProbeFS names file systems made by the real tools.
func TestProbeFS(t *testing.T) {
	cases := []struct {
		want string
		mk   []string
		size int64
	}{
		{"fat12", []string{"mkfs.vfat", "-F", "12"}, 4 << 20},
		{"fat16", []string{"mkfs.vfat", "-F", "16"}, 32 << 20},
		{"fat32", []string{"mkfs.vfat", "-F", "32"}, 64 << 20},
		{"ext2", []string{"mkfs.ext2", "-q", "-F"}, 8 << 20},
		{"ext3", []string{"mkfs.ext3", "-q", "-F"}, 8 << 20},
		{"ext4", []string{"mkfs.ext4", "-q", "-F"}, 8 << 20},
		{"ntfs", []string{"mkntfs", "-q", "-F", "-Q"}, 8 << 20},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			testutil.RequireTool(t, c.mk[0], "dosfstools, e2fsprogs or ntfs-3g")
			p := filepath.Join(t.TempDir(), "fs")
			f, _ := os.Create(p)
			f.Truncate(c.size)
			f.Close()
			if out, err := exec.Command(c.mk[0], append(c.mk[1:], p)...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", c.mk, err, out)
			}
			b, _ := os.ReadFile(p)
			if got := probeFS(memDev(b)); got != c.want {
				t.Errorf("probeFS = %q, want %q", got, c.want)
			}
		})
	}
	if got := probeFS(memDev(make([]byte, 1<<20))); got != "" {
		t.Errorf("zeros probed as %q", got)
	}
	// ISO 9660's descriptor lies past the first 4 KiB, read on its own
	iso := make([]byte, 0x9000)
	copy(iso[0x8001:], "CD001")
	if got := probeFS(memDev(iso)); got != "iso9660" {
		t.Errorf("ISO 9660 probed as %q", got)
	}
	if got := probeFS(memDev(iso[:0x8004])); got != "" {
		t.Errorf("a truncated ISO descriptor probed as %q", got)
	}
}

func FuzzProbeFS(f *testing.F) {
	boot := make([]byte, 0x8010)
	copy(boot[3:], "MSDOS5.0")
	boot[0], boot[11], boot[12], boot[13], boot[14], boot[16], boot[17], boot[19], boot[22] = 0xEB, 0, 2, 4, 1, 2, 0, 0, 9
	boot[510], boot[511] = 0x55, 0xAA
	f.Add(boot)
	ext := make([]byte, 0x8010)
	ext[0x438], ext[0x439] = 0x53, 0xEF
	f.Add(ext)
	f.Add(bytes.Repeat([]byte{0xFF}, 600))
	f.Fuzz(func(t *testing.T, b []byte) {
		probeFS(memDev(b))
	})
}
