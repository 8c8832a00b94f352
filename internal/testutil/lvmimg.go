package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// LVMImage is a raw GPT disk with two LVM partitions whose volume group
// was made by Debian's lvm2 (pvcreate, vgcreate, vgcfgrestore: no
// device-mapper needed). Where each LV lies is what `lvs --segments`
// reports, not what offvm computes.
type LVMImage struct {
	Path string
	VG   string
	// Segs maps an LV name to its segments as lvs reports them.
	Segs map[string][]LVSeg
}

// LVSeg is one segment: its stripes' byte offsets on the disk.
type LVSeg struct {
	Start, Size int64 // bytes within the LV
	StripeSize  int64 // bytes; 0 for linear
	Stripes     []int64
}

// LVText is the logical_volumes section MakeLVMImage restores: "root"
// linear over both PVs (40 MiB + 20 MiB), "data" striped over both
// (2 x 16 MiB, 64 KiB chunks).
const LVText = `
	logical_volumes {
		root {
			id = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 2
			segment1 {
				start_extent = 0
				extent_count = 10
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 0]
			}
			segment2 {
				start_extent = 10
				extent_count = 5
				type = "striped"
				stripe_count = 1
				stripes = ["pv1", 0]
			}
		}
		data {
			id = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000002"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 8
				type = "striped"
				stripe_count = 2
				stripe_size = 128
				stripes = ["pv0", 10, "pv1", 5]
			}
		}
	}
`

// vgSeq keeps VG names unique: the host's LVM sees every loop device.
var vgSeq atomic.Int64

var partStarts = []int64{2048 * 512, 198656 * 512}

const partSize = 196608 * 512

// MakeLVMImage builds the image in dir with the LVs of lvText (LVText
// when ""). Needs root and lvm2.
func MakeLVMImage(t testing.TB, dir, lvText string) *LVMImage {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "vgcfgrestore", "lvm2")
	RequireTool(t, "sfdisk", "fdisk")
	if lvText == "" {
		lvText = LVText
	}
	img := &LVMImage{Path: filepath.Join(dir, "lvm.img"), VG: fmt.Sprintf("ovt%d_%d", os.Getpid(), vgSeq.Add(1)), Segs: map[string][]LVSeg{}}
	Run(t, "truncate", "-s", "200M", img.Path)
	table := "label: gpt\nstart=2048,size=196608,type=E6D6D379-F507-44C2-A23C-238F2A3DF928\nstart=198656,size=196608,type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n"
	cmd := exec.Command("sfdisk", "-q", img.Path)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var loops []string
	for _, st := range partStarts {
		l := strings.TrimSpace(Run(t, "losetup", "-f", "--show", "-o", strconv.FormatInt(st, 10), "--sizelimit", strconv.Itoa(partSize), img.Path))
		loops = append(loops, l)
	}
	defer func() {
		for _, l := range loops {
			exec.Command("losetup", "-d", l).Run()
		}
	}()
	lvm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	lvm(append([]string{"pvcreate", "-qq", "-y"}, loops...)...)
	lvm(append([]string{"vgcreate", "-qq", "-s", "4M", img.VG}, loops...)...)
	backup := filepath.Join(dir, "vg.txt")
	lvm("vgcfgbackup", "-f", backup, img.VG)
	text, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(text), "}")
	if err := os.WriteFile(backup, []byte(string(text[:i])+lvText+string(text[i:])), 0o600); err != nil {
		t.Fatal(err)
	}
	// vgcfgrestore warns that it cannot reach device-mapper; the
	// metadata is written all the same, as lvs then shows.
	exec.Command("vgcfgrestore", "-f", backup, img.VG).Run()
	img.readSegs(t, lvm, loops)
	return img
}

func (img *LVMImage) readSegs(t testing.TB, lvm func(...string) string, loops []string) {
	t.Helper()
	out := lvm("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "--segments",
		"-o", "lv_name,seg_start,seg_size,stripe_size,seg_pe_ranges", img.VG)
	pe := lvm("pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pv_name,pe_start,vg_extent_size")
	var rep struct {
		Report []struct {
			LV  []map[string]string `json:"lv"`
			Seg []map[string]string `json:"seg"`
			PV  []map[string]string `json:"pv"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(pe), &rep); err != nil {
		t.Fatalf("pvs json: %v\n%s", err, pe)
	}
	peStart, extent := map[string]int64{}, int64(0)
	for _, p := range rep.Report[0].PV {
		peStart[p["pv_name"]], _ = strconv.ParseInt(p["pe_start"], 10, 64)
		extent, _ = strconv.ParseInt(p["vg_extent_size"], 10, 64)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("lvs json: %v\n%s", err, out)
	}
	for _, s := range append(rep.Report[0].LV, rep.Report[0].Seg...) {
		var seg LVSeg
		seg.Start, _ = strconv.ParseInt(s["seg_start"], 10, 64)
		seg.Size, _ = strconv.ParseInt(s["seg_size"], 10, 64)
		seg.StripeSize, _ = strconv.ParseInt(s["stripe_size"], 10, 64)
		for _, r := range strings.Fields(s["seg_pe_ranges"]) { // /dev/loop0:10-13
			dev, rng, _ := strings.Cut(r, ":")
			first, _, _ := strings.Cut(rng, "-")
			n, _ := strconv.ParseInt(first, 10, 64)
			k := -1
			for i, l := range loops {
				if l == dev {
					k = i
				}
			}
			if k < 0 {
				t.Fatalf("lvs names %s, not one of %v", dev, loops)
			}
			seg.Stripes = append(seg.Stripes, partStarts[k]+peStart[dev]+n*extent)
		}
		img.Segs[s["lv_name"]] = append(img.Segs[s["lv_name"]], seg)
	}
}

// Size is the LV's size in bytes.
func (img *LVMImage) Size(lv string) int64 {
	var n int64
	for _, s := range img.Segs[lv] {
		n += s.Size
	}
	return n
}

// Place calls f for each run of the LV's bytes with the disk offset
// where the run lies (dm-linear and dm-striped's layout: chunks dealt to
// the stripes in turn).
func (img *LVMImage) Place(lv string, f func(lvOff, diskOff, n int64)) {
	for _, s := range img.Segs[lv] {
		if len(s.Stripes) == 1 {
			f(s.Start, s.Stripes[0], s.Size)
			continue
		}
		n := int64(len(s.Stripes))
		for c := int64(0); c*s.StripeSize < s.Size; c++ {
			f(s.Start+c*s.StripeSize, s.Stripes[c%n]+(c/n)*s.StripeSize, s.StripeSize)
		}
	}
}

// WriteLV puts data (at most the LV's size) at the start of the LV.
func (img *LVMImage) WriteLV(t testing.TB, lv string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(img.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img.Place(lv, func(lo, do, n int64) {
		if lo >= int64(len(data)) {
			return
		}
		if _, err := f.WriteAt(data[lo:min(lo+n, int64(len(data)))], do); err != nil {
			t.Fatal(err)
		}
	})
}

// ReadLV returns the LV's bytes as the kernel's dm would map them.
func (img *LVMImage) ReadLV(t testing.TB, path, lv string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make([]byte, img.Size(lv))
	img.Place(lv, func(lo, do, n int64) {
		if _, err := f.ReadAt(out[lo:lo+n], do); err != nil {
			t.Fatal(err)
		}
	})
	return out
}

// Report is lvm2's own view of the group on the disk at path (as
// `lvs --segments` prints it), read from fresh loop devices: what a
// guest's LVM would assemble.
func (img *LVMImage) Report(t testing.TB, path string) string {
	t.Helper()
	var loops []string
	defer func() {
		for _, l := range loops {
			exec.Command("losetup", "-d", l).Run()
		}
	}()
	for _, st := range partStarts {
		loops = append(loops, strings.TrimSpace(Run(t, "losetup", "-f", "--show", "-r", "-o", strconv.FormatInt(st, 10), "--sizelimit", strconv.Itoa(partSize), path)))
	}
	out, err := exec.Command("lvs", "--noheadings", "--units", "b", "--segments", "-o", "vg_seqno,lv_name,seg_start,seg_size,stripe_size,seg_pe_ranges", img.VG).Output()
	if err != nil {
		t.Fatalf("lvs on %s: %v", path, err)
	}
	for i, l := range loops { // loop names vary from run to run
		out = []byte(strings.ReplaceAll(string(out), l, "pv"+strconv.Itoa(i)))
	}
	return string(out)
}

// PV is the byte range of the i-th physical volume (partition) on the disk.
func (img *LVMImage) PV(i int) (start, size int64) { return partStarts[i], partSize }
