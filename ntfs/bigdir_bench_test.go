package ntfs

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system time: on a shared machine the
// wall time of a benchmark says more about the neighbours than the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
		c0 := cpuTime()
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
		cpu += cpuTime() - c0
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
