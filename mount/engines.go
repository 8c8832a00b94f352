package mount

import (
	"fmt"

	"github.com/offvm/offvm/btrfs"
	"github.com/offvm/offvm/diskfsvol"
	"github.com/offvm/offvm/ext"
	"github.com/offvm/offvm/fat"
	"github.com/offvm/offvm/ntfs"
	"github.com/offvm/offvm/volume"
	"github.com/offvm/offvm/xfs"
)

// engineFunc opens a file system engine on a partition. readOnly asks the
// engine never to write.
type engineFunc func(dev volume.Device, readOnly bool) (volume.FS, error)

// engines maps what probeFS finds to the engine that serves it.
var engines = map[string]engineFunc{
	"ntfs":    openNTFS,
	"fat12":   openFAT,
	"fat16":   openFAT,
	"fat32":   openFAT,
	"ext2":    openExt,
	"ext3":    openExt,
	"ext4":    openExt,
	"btrfs":   func(dev volume.Device, _ bool) (volume.FS, error) { return btrfs.Open(dev) },
	"xfs":     openXFS,
	"iso9660": func(dev volume.Device, _ bool) (volume.FS, error) { return diskfsvol.OpenISO(dev) },
}

// openExt serves ext2/3/4 with offvm's own engine (go-diskfs refuses
// ext2/ext3 and walks whole paths on every call). Writable opens still
// come back read-only, with the reason, for what the writer does not keep
// right (block-mapped ext2/3, a journal to replay, unknown features).
func openExt(dev volume.Device, ro bool) (volume.FS, error) {
	if ro {
		return ext.Open(dev)
	}
	return ext.OpenWritable(dev)
}

func openEngine(fsType string, dev volume.Device, readOnly bool) (volume.FS, error) {
	open, ok := engines[fsType]
	if !ok {
		return nil, fmt.Errorf("no engine for %s file systems", fsType)
	}
	fs, err := open(dev, readOnly)
	if err != nil {
		// never a typed nil inside a non-nil interface
		return nil, err
	}
	return fs, nil
}

func openNTFS(dev volume.Device, ro bool) (volume.FS, error) {
	return ntfs.Open(dev, ntfs.Options{ReadOnly: ro})
}

func openFAT(dev volume.Device, ro bool) (volume.FS, error) {
	return fat.Open(dev, fat.Options{ReadOnly: ro})
}

// openXFS serves XFS; writable opens come back read-only, with the
// reason, for what the writer does not keep right (v4, rmapbt, a dirty
// log, quotas, a realtime section).
func openXFS(dev volume.Device, ro bool) (volume.FS, error) {
	if ro {
		return xfs.Open(dev)
	}
	return xfs.OpenWritable(dev)
}
