package txn

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// BenchmarkCommitPhases splits a 64 MiB commit into its phases (staging
// through the format, writing and syncing the journal, applying and
// syncing the image) to show where a commit's time goes, for writes into
// free space that holds zeros (a fresh image) and into space that held
// data (the old bytes must be journaled). make bench prints it.
func BenchmarkCommitPhases(b *testing.B) {
	const change, piece = 64 << 20, 1 << 20
	for _, c := range []struct {
		name string
		used bool
	}{{"zeros", false}, {"used", true}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			image := filepath.Join(dir, "disk.img")
			old := make([]byte, change)
			if c.used {
				old = randomBytes(3, change)
			}
			data := randomBytes(4, piece)
			var stage, journal, apply time.Duration
			b.SetBytes(change)
			for b.Loop() {
				b.StopTimer()
				if err := os.WriteFile(image, old, 0o644); err != nil { // the same old bytes every time
					b.Fatal(err)
				}
				base, err := openRaw(image, vdisk.Options{})
				if err != nil {
					b.Fatal(err)
				}
				o, err := NewOverlay(base, dir)
				if err != nil {
					b.Fatal(err)
				}
				for k := int64(0); k < change/piece; k++ {
					data[0]++
					if _, err := o.WriteAt(data, k*piece); err != nil {
						b.Fatal(err)
					}
				}
				os.Remove(UndoPath(image))
				b.StartTimer()
				s, err := newStager(dir)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if _, err := stageOverlay(image, o, openRaw, s, nil); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				j, err := writeJournal(image, s, nil)
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if err := finishCommit(image, j, nil); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				stage, journal, apply = stage+t1.Sub(t0), journal+t2.Sub(t1), apply+t3.Sub(t2)
				s.close()
				o.Close()
			}
			n := float64(b.N)
			b.ReportMetric(float64(stage.Milliseconds())/n, "stage-ms/op")
			b.ReportMetric(float64(journal.Milliseconds())/n, "journal-ms/op")
			b.ReportMetric(float64(apply.Milliseconds())/n, "apply-ms/op")
			if st, err := os.Stat(UndoPath(image)); err == nil {
				b.ReportMetric(float64(st.Size())/change, "journal-bytes/changed-byte")
			}
		})
	}
}
