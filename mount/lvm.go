package mount

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/offvm/offvm/lvm"
	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/volume"
)

// lvBase is the number of the first logical volume: LVs show as p100,
// p101, ... beside the partitions (in VG then LV name order), so that
// everything that names a volume by number (the tree, drives, patch
// targets) serves them unchanged.
const lvBase = 100

// logical is the LVM side of an image, found on first use.
type logical struct {
	parts []partition.Partition
	lvs   map[int]lvRef
	errs  []error
}

type lvRef struct {
	group *lvm.Group
	lv    *lvm.LV
}

// logicalVolumes assembles the volume groups whose PVs are the image's
// partitions (or the whole disk), once.
func (im *Image) logicalVolumes() *logical {
	im.lvOnce.Do(func() {
		im.lvm = &logical{lvs: map[int]lvRef{}}
		base := im.diskPartitions()
		var disks []lvm.Disk
		next := lvBase
		for _, p := range base {
			var dev volume.Device = &window{disk: im.disk, start: p.Start, size: p.Size}
			if u := im.unlock(p.Number, dev); u != nil { // LVM on LUKS, as Ubuntu's encrypted install makes
				if u.dev == nil {
					continue
				}
				dev = u.dev
			}
			disks = append(disks, lvm.Disk{Name: "p" + strconv.Itoa(p.Number), Dev: dev})
			next = max(next, p.Number+1)
		}
		groups, errs := lvm.Assemble(disks)
		for _, err := range errs {
			slog.Warn("lvm", "image", im.Path, "err", err)
			im.lvm.errs = append(im.lvm.errs, fmt.Errorf("%s: %w", im.Path, err))
		}
		for _, g := range groups {
			for _, lv := range g.VG.LVs {
				im.lvm.parts = append(im.lvm.parts, partition.Partition{Number: next, Type: "LVM2 " + lv.Type + " logical volume",
					TypeID: "lvm:" + lv.Type, GUID: lv.ID, Name: lv.VG + "/" + lv.Name, Size: lv.Size})
				im.lvm.lvs[next] = lvRef{g, lv}
				next++
			}
		}
	})
	return im.lvm
}

// LVName is "vg/lv" for a logical volume's number, "" for a partition.
func (im *Image) LVName(n int) string {
	if r, ok := im.logicalVolumes().lvs[n]; ok {
		return r.lv.VG + "/" + r.lv.Name
	}
	return ""
}

// openLV gives the device of logical volume n; ok is false when n is a
// partition. An LV offvm does not map (thin, RAID, snapshot store) or
// whose PVs are not all in the image carries the reason in err.
func (im *Image) openLV(n int) (dev volume.Device, readOnly string, ok bool, err error) {
	r, ok := im.logicalVolumes().lvs[n]
	if !ok {
		return nil, "", false, nil
	}
	dev, err = r.group.Open(r.lv)
	if err != nil {
		return nil, "", true, fmt.Errorf("%s p%d (%s/%s): %w", im.Path, n, r.lv.VG, r.lv.Name, err)
	}
	return dev, r.lv.ReadOnly, true, nil
}

// LVLinks names each logical volume as device-mapper does under
// /dev/mapper ("-" in a name doubled), prefixed "lv-": the FUSE tree
// shows lv-ubuntu--vg-ubuntu--lv as a symlink to p101.
func (im *Image) LVLinks() map[string]string {
	out := map[string]string{}
	for n, r := range im.logicalVolumes().lvs {
		dm := strings.ReplaceAll(r.lv.VG, "-", "--") + "-" + strings.ReplaceAll(r.lv.Name, "-", "--")
		out["lv-"+dm] = "p" + strconv.Itoa(n)
	}
	return out
}
