package ntfs

import (
	"bytes"
	"os/exec"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// countDev counts the bytes written to the device.
type countDev struct {
	volume.Device
	mu     sync.Mutex
	writes [][2]int64 // offset, length
}

func (d *countDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.writes = append(d.writes, [2]int64{off, int64(len(p))})
	d.mu.Unlock()
	return d.Device.WriteAt(p, off)
}

// TestLogFileResetWritesOnlyUsedPages: the first change to a volume
// Windows used empties its $LogFile, writing only the pages that held
// anything; ntfscat then reads the whole log as 0xff.
func TestLogFileResetWritesOnlyUsedPages(t *testing.T) {
	testutil.RequireTool(t, "ntfscat", "ntfs-3g")
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	for _, w := range windowsVolumes {
		t.Run(w.name, func(t *testing.T) {
			img := w.img(t)
			log, err := exec.Command("ntfscat", img, "$LogFile").Output()
			if err != nil {
				t.Fatalf("ntfscat $LogFile: %v", err)
			}
			used := 0
			for p := 0; p < len(log); p += logPage {
				if !bytes.Equal(log[p:p+logPage], bytes.Repeat([]byte{0xff}, logPage)) {
					used++
				}
			}
			if used == 0 || used == len(log)/logPage {
				t.Fatalf("$LogFile has %d of %d pages in use: the test needs a partly used log", used, len(log)/logPage)
			}
			d := &countDev{Device: openDev(t, img, 0)}
			v, err := Open(d, Options{})
			if err != nil {
				t.Fatal(err)
			}
			in, err := v.loadInode(recLogFile)
			if err != nil {
				t.Fatal(err)
			}
			runs := in.find(atData, "").runs
			if _, err := v.Create(v.Root(), "first-change.txt", 0o644); err != nil {
				t.Fatal(err)
			}
			var inLog int64
			cs := v.geo.clusterSize
			for _, w := range d.writes {
				for _, r := range runs {
					lo, hi := max(w[0], r.lcn*cs), min(w[0]+w[1], (r.lcn+r.length)*cs)
					if r.lcn >= 0 && hi > lo {
						inLog += hi - lo
					}
				}
			}
			if inLog != int64(used*logPage) {
				t.Errorf("wrote %d bytes of $LogFile, want %d (%d used pages of %d)", inLog, used*logPage, used, len(log)/logPage)
			}
			after, err := exec.Command("ntfscat", img, "$LogFile").Output()
			if err != nil || len(after) != len(log) || !bytes.Equal(after, bytes.Repeat([]byte{0xff}, len(log))) {
				t.Errorf("ntfscat reads a $LogFile that is not all 0xff (%d bytes, %v)", len(after), err)
			}
			t.Logf("first change wrote %d KiB of a %d KiB $LogFile", inLog>>10, len(log)>>10)
			checkConsistent(t, img)
		})
	}
}
