package ntfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// benchVolume formats a fresh 1 GiB volume for one benchmark run.
func benchVolume(b *testing.B) *Volume {
	b.Helper()
	testutil.RequireTool(b, "mkntfs", "ntfs-3g")
	img := mkntfsImage(b, b.TempDir(), 1024, 4096)
	return openVol(b, img, 0, Options{})
}

// BenchmarkWrite256MiB writes one 256 MiB file in 1 MiB calls.
func BenchmarkWrite256MiB(b *testing.B) {
	buf := pattern(1<<20, 1)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v := benchVolume(b)
		b.StartTimer()
		a, err := v.Create(v.Root(), "big.bin", 0o644)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < 256<<20; off += 1 << 20 {
			if _, err := v.WriteAt(a.Ino, buf, off); err != nil {
				b.Fatal(err)
			}
		}
		v.Sync()
	}
	b.SetBytes(256 << 20)
}

// BenchmarkCreate1000 creates 1,000 small files in one directory.
func BenchmarkCreate1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v := benchVolume(b)
		b.StartTimer()
		d, err := v.Mkdir(v.Root(), "d", 0o755)
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 1000; k++ {
			a, err := v.Create(d.Ino, fmt.Sprintf("file-%04d.txt", k), 0o644)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.WriteAt(a.Ino, []byte("small content"), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStatRead5000 looks up and reads 5,000 small files made by ntfs-3g.
func BenchmarkStatRead5000(b *testing.B) {
	requireNTFSTools(b)
	img := mkntfsImage(b, b.TempDir(), 256, 4096)
	mnt, unmount := mount3g(b, img)
	os.Mkdir(filepath.Join(mnt, "d"), 0o755)
	for k := 0; k < 5000; k++ {
		os.WriteFile(filepath.Join(mnt, "d", fmt.Sprintf("f%05d", k)), []byte("content"), 0o644)
	}
	unmount()
	b.ResetTimer()
	buf := make([]byte, 4096)
	for i := 0; i < b.N; i++ {
		v := openVol(b, img, 0, Options{ReadOnly: true})
		d, err := v.Lookup(v.Root(), "d")
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 5000; k++ {
			a, err := v.Lookup(d.Ino, fmt.Sprintf("f%05d", k))
			if err != nil {
				b.Fatal(err)
			}
			v.ReadAt(a.Ino, buf, 0)
		}
	}
}
