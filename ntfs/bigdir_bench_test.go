package ntfs

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// BenchmarkBigDirCreateDelete is the engine's part of make bench's NTFS
// directory figure: create then delete 2,000 files in a 40,000-entry
// directory. Run with -benchtime=Nx: each
// call of the function builds the 40,000 names again.
func BenchmarkBigDirCreateDelete(b *testing.B) {
	requireNTFSTools(b)
	b.StopTimer()
	base := bigDirImage(b, b.TempDir(), 40000) // ntfs-3g takes a while: once
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		img := filepath.Join(b.TempDir(), "sys.img")
		copyFile(b, base, img)
		v := openVol(b, img, 0, Options{})
		sys := lookupPath(b, v, "Windows", "System32")
		b.StartTimer()
		c0 := testutil.CPUTime()
		for k := 0; k < 2000; k++ {
			name := fmt.Sprintf("new-patch-file-%d-with-a-long-name.dll", k)
			if _, err := v.Lookup(sys, name); err == nil {
				b.Fatalf("%s exists before it was made", name)
			}
			if _, err := v.Create(sys, name, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		for k := 0; k < 2000; k++ {
			if err := v.Unlink(sys, fmt.Sprintf("new-patch-file-%d-with-a-long-name.dll", k)); err != nil {
				b.Fatal(err)
			}
		}
		cpu += testutil.CPUTime() - c0
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkBigDirRemoveAll is rm -r of a System32-shaped directory on the
// engine: list it, unlink every name in listing order, remove it. Its
// cpu-µs/entry at 10,000, 20,000 and 40,000 names shows the growth: flat
// or logarithmic per entry (O(n log n) in all), where rebuilding the
// index at each removal would double it with every doubling (O(n²)).
func BenchmarkBigDirRemoveAll(b *testing.B) {
	requireNTFSTools(b)
	for _, n := range []int{10000, 20000, 40000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			base := bigDirImage(b, b.TempDir(), n)
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				img := filepath.Join(b.TempDir(), "sys.img")
				copyFile(b, base, img)
				v := openVol(b, img, 0, Options{})
				win := lookupPath(b, v, "Windows")
				sys := lookupPath(b, v, "Windows", "System32")
				b.StartTimer()
				c0 := testutil.CPUTime()
				ents, err := v.ReadDir(sys)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range ents {
					if err := v.Unlink(sys, e.Name); err != nil {
						b.Fatalf("unlink %s: %v", e.Name, err)
					}
				}
				if err := v.Rmdir(win, "System32"); err != nil {
					b.Fatal(err)
				}
				cpu += testutil.CPUTime() - c0
			}
			b.ReportMetric(cpu.Seconds()*1e6/float64(b.N*n), "cpu-µs/entry")
		})
	}
}

// BenchmarkBigDirListStat is what a commit's list of guest changes costs
// on one side of a System32-shaped directory: a freshly opened volume
// lists 40,000 names and stats each file.
func BenchmarkBigDirListStat(b *testing.B) {
	requireNTFSTools(b)
	img := bigDirImage(b, b.TempDir(), 40000)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v := openVol(b, img, 0, Options{ReadOnly: true})
		sys := lookupPath(b, v, "Windows", "System32")
		b.StartTimer()
		c0 := testutil.CPUTime()
		ents, err := v.ReadDir(sys)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			if _, err := v.GetAttr(e.Ino); err != nil {
				b.Fatalf("%s: %v", e.Name, err)
			}
		}
		cpu += testutil.CPUTime() - c0
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
