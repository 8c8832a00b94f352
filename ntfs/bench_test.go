package ntfs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// BenchmarkOpenMemory reports the heap an open volume keeps after its root
// was listed and a file read (what a daemon holds per visited image), and
// what a walk of a 2,000-name directory leaves cached.
func BenchmarkOpenMemory(b *testing.B) {
	requireNTFSTools(b)
	img := bigDirImage(b, b.TempDir(), 2000)
	const n = 40
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := 0; i < b.N; i++ {
		before := heap()
		vols := make([]*Volume, n)
		for j := range vols {
			vols[j] = openVol(b, img, 0, Options{ReadOnly: true})
			if _, err := vols[j].ReadDir(vols[j].Root()); err != nil {
				b.Fatal(err)
			}
		}
		opened := heap()
		sys := lookupPath(b, vols[0], "Windows", "System32")
		if _, err := vols[0].ReadDir(sys); err != nil {
			b.Fatal(err)
		}
		for k := 0; k < 2000; k += 1 {
			if _, err := vols[0].Lookup(sys, sys32Name(k)); err != nil {
				b.Fatal(err)
			}
		}
		walked := heap()
		b.ReportMetric(float64(opened-before)/n, "B/open-volume")
		b.ReportMetric(float64(walked-opened), "B/2000-lookups")
		runtime.KeepAlive(vols)
	}
}
