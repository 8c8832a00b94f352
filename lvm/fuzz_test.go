package lvm

import (
	"bytes"
	"os"
	"testing"

	"github.com/offvm/offvm/volume"
)

type memDev struct{ *bytes.Reader }

func (m memDev) Size() int64 { return m.Reader.Size() }

func (memDev) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func FuzzParseVG(f *testing.F) {
	f.Add([]byte(vgHead + `a { status = ["VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } } }}`))
	f.Add([]byte(`x { y = [1, "a", 2.5] z { } }`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vg, err := parseVG(b)
		if err != nil {
			return
		}
		g := &Group{VG: vg, pvs: map[string]volume.Device{}}
		for _, pv := range vg.PVs {
			g.pvs[pv.Name] = memDev{bytes.NewReader(make([]byte, 1<<20))}
		}
		buf := make([]byte, 4096)
		for _, lv := range vg.LVs {
			if dev, err := g.Open(lv); err == nil {
				dev.ReadAt(buf, 0)
				dev.ReadAt(buf, dev.Size()-100)
			}
		}
	})
}

func FuzzReadLabel(f *testing.F) {
	f.Add(make([]byte, 4096))
	// the first 16 KiB of a PV made by lvm2 2.03.16's pvcreate and
	// vgcreate: label, metadata area header and text
	if b, err := os.ReadFile("testdata/pv-head.bin"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ReadLabel(bytes.NewReader(b))
		if err == nil && l.Metadata != nil {
			parseVG(l.Metadata)
		}
	})
}
