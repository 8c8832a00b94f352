package lvm

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// fileRange is a byte range of a file as a volume.Device.
type fileRange struct {
	f           *os.File
	start, size int64
}

func (r fileRange) Size() int64 { return r.size }
func (r fileRange) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - off; int64(len(p)) > rem {
		n, err := r.f.ReadAt(p[:rem], r.start+off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return r.f.ReadAt(p, r.start+off)
}
func (r fileRange) WriteAt(p []byte, off int64) (int, error) { return r.f.WriteAt(p, r.start+off) }

func openDisks(t *testing.T, path string) []Disk {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return []Disk{
		{Name: "p1", Dev: fileRange{f, 2048 * 512, 196608 * 512}},
		{Name: "p2", Dev: fileRange{f, 198656 * 512, 196608 * 512}},
	}
}

// TestMapsLikeLVM: bytes placed where lvm2's own `lvs --segments`
// reports each LV's extents read back through offvm's mapping, and
// bytes offvm writes land there.
func TestMapsLikeLVM(t *testing.T) {
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	want := map[string][]byte{}
	rng := rand.New(rand.NewSource(1))
	for _, lv := range []string{"root", "data"} {
		b := make([]byte, img.Size(lv))
		rng.Read(b)
		img.WriteLV(t, lv, b)
		want[lv] = b
	}
	groups, errs := Assemble(openDisks(t, img.Path))
	if len(errs) != 0 || len(groups) != 1 {
		t.Fatalf("groups %v errs %v", groups, errs)
	}
	g := groups[0]
	if g.VG.Name != img.VG || len(g.Missing) != 0 || len(g.VG.LVs) != 2 {
		t.Fatalf("vg %+v missing %v", g.VG, g.Missing)
	}
	for _, lv := range g.VG.LVs {
		wantType := map[string]string{"root": "linear", "data": "striped"}[lv.Name]
		if lv.Type != wantType || lv.Size != img.Size(lv.Name) {
			t.Fatalf("%s: type %s size %d, want %s %d", lv.Name, lv.Type, lv.Size, wantType, img.Size(lv.Name))
		}
		dev, err := g.Open(lv)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, dev.Size())
		// odd-sized reads cross segment and chunk boundaries
		for off := 0; off < len(got); off += 100003 {
			end := min(off+100003, len(got))
			if _, err := dev.ReadAt(got[off:end], int64(off)); err != nil && !(errors.Is(err, io.EOF) && end == len(got)) {
				t.Fatalf("%s read at %d: %v", lv.Name, off, err)
			}
		}
		if !bytes.Equal(got, want[lv.Name]) {
			t.Fatalf("%s: bytes differ from lvm2's layout", lv.Name)
		}
		patch := bytes.Repeat([]byte("offvm"), 30000)
		at := min(int64(40<<20-70000), dev.Size()/2+12345) // across root's segment boundary, across data's chunks
		if _, err := dev.WriteAt(patch, at); err != nil {
			t.Fatal(err)
		}
		copy(want[lv.Name][at:], patch)
	}
	for lv, b := range want {
		if !bytes.Equal(img.ReadLV(t, img.Path, lv), b) {
			t.Fatalf("%s: offvm's write is not where lvm2's layout puts it", lv)
		}
	}
	// a missing PV leaves its LVs unopenable, with the reason
	groups, _ = Assemble(openDisks(t, img.Path)[:1])
	if len(groups) != 1 || len(groups[0].Missing) != 1 {
		t.Fatalf("with one disk: %+v", groups)
	}
	if _, err := groups[0].Open(groups[0].VG.LVs[0]); err == nil || !strings.Contains(err.Error(), "not in this image") {
		t.Fatalf("open with a PV missing: %v", err)
	}
}

func TestConcurrentReads(t *testing.T) {
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	groups, _ := Assemble(openDisks(t, img.Path))
	dev, err := groups[0].Open(groups[0].VG.LVs[0])
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := make([]byte, 1<<16)
			for off := int64(i) << 16; off < dev.Size(); off += 8 << 16 {
				if _, err := dev.ReadAt(b, off); err != nil && err != io.EOF {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

const vgHead = `tvg {
	id = "vgid"
	seqno = 3
	extent_size = 8192
	physical_volumes {
		pv0 {
			id = "pvid"
			pe_start = 2048
			pe_count = 100
		}
	}
	logical_volumes {
`

func TestLVTypes(t *testing.T) {
	tests := []struct {
		name, lvs   string
		lv, typ, ro string
		unsupported bool
	}{
		{"thin pool", `pool { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "thin-pool" metadata = "pool_tmeta" pool = "pool_tdata" } }`, "pool", "thin-pool", "", true},
		{"raid1", `r { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "raid1" device_count = 2 } }`, "r", "raid1", "", true},
		{"snapshot", `o { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } }
		  s { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 4] } }
		  snapshot0 { status = ["READ"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "snapshot" chunk_size = 8 origin = "o" cow_store = "s" } }`, "s", "snapshot", "", true},
		{"snapshot origin", `snapshot0 { status = ["READ"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "snapshot" chunk_size = 8 origin = "o" cow_store = "s" } }
		  o { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } }
		  s { status = ["READ","WRITE","VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 4] } }`, "o", "linear", "snapshot", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vg, err := parseVG([]byte(vgHead + tc.lvs + "}}"))
			if err != nil {
				t.Fatal(err)
			}
			var lv *LV
			for _, l := range vg.LVs {
				if l.Name == tc.lv {
					lv = l
				}
			}
			if lv == nil {
				t.Fatalf("no lv %s in %+v", tc.lv, vg.LVs)
			}
			if lv.Type != tc.typ || (lv.Unsupported != "") != tc.unsupported || !strings.Contains(lv.ReadOnly, tc.ro) || (tc.ro == "") != (lv.ReadOnly == "") {
				t.Fatalf("%+v", lv)
			}
		})
	}
}

func TestCorruptText(t *testing.T) {
	tests := []string{
		``,
		`tvg { extent_size = 0 }`,
		vgHead + `a { segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripes = ["pv9", 0] } } }}`,
		vgHead + `a { segment_count = 1 segment1 { start_extent = 0 extent_count = 400 type = "striped" stripes = ["pv0", 0] } } }}`,
		vgHead + `a { segment_count = 2 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripes = ["pv0", 0] } } }}`,
		vgHead + `a { segment_count = 1 segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 2 stripe_size = 100 stripes = ["pv0", 0, "pv0", 50] } } }}`,
		`tvg { id = "x`,
		strings.Repeat("a {", 100),
	}
	for i, txt := range tests {
		if _, err := parseVG([]byte(txt)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("case %d: %v, want ErrCorrupt", i, err)
		}
	}
}

// TestRealLabel reads the label and metadata of a PV lvm2 wrote (the
// fuzz seed), so that the label and checksum code is checked against
// lvm2's own output even without root.
func TestRealLabel(t *testing.T) {
	b, err := os.ReadFile("testdata/pv-head.bin")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ReadLabel(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	vg, err := parseVG(l.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.UUID) != 38 || vg.ExtentSize != 4<<20 || len(vg.PVs) != 2 || vg.PVs[0].UUID != l.UUID {
		t.Fatalf("label %+v vg %+v", l, vg)
	}
}

// failDev fails every write after the first n bytes with EIO.
type failDev struct {
	fileRange
	left int
}

func (d *failDev) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > d.left {
		return 0, syscall.EIO
	}
	d.left -= len(p)
	return d.fileRange.WriteAt(p, off)
}

// TestWriteErrors: a PV that fails (I/O error) or an LV write past its
// end is an error the caller sees, never a panic or a short success.
func TestWriteErrors(t *testing.T) {
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	disks := openDisks(t, img.Path)
	for i := range disks {
		disks[i].Dev = &failDev{disks[i].Dev.(fileRange), 1 << 20}
	}
	groups, _ := Assemble(disks)
	var root *LV
	for _, lv := range groups[0].VG.LVs {
		if lv.Name == "root" {
			root = lv
		}
	}
	dev, err := groups[0].Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := dev.WriteAt(make([]byte, 2<<20), 0); !errors.Is(err, syscall.EIO) || n != 0 {
		t.Fatalf("write onto a failing PV: %d, %v", n, err)
	}
	if _, err := dev.WriteAt([]byte("x"), dev.Size()); err == nil {
		t.Fatal("write past the LV's end succeeded")
	}
	if n, err := dev.ReadAt(make([]byte, 10), dev.Size()-4); n != 4 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
}
