package mount

import (
	"errors"
	"fmt"

	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/volume"
)

// Registry returns the Windows registry of the image's system volume
// (the NTFS volume holding Windows\System32\config), found on first use.
// It returns winreg.ErrNotWindows for images without one.
func (im *Image) Registry() (*winreg.Registry, *Volume, error) {
	im.regOnce.Do(func() { im.reg, im.regVol, im.regErr = im.findRegistry() })
	return im.reg, im.regVol, im.regErr
}

func (im *Image) findRegistry() (*winreg.Registry, *Volume, error) {
	for _, v := range im.Volumes() {
		if v.FS == nil || v.FSType != "ntfs" {
			continue
		}
		var w volume.Writer
		if v.ReadOnly == "" {
			w, _ = v.FS.(volume.Writer)
		}
		r, err := winreg.Open(v.FS, w, v.ReadOnly, im.opts.NoSecrets)
		if errors.Is(err, winreg.ErrNotWindows) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s partition %d: %w", im.Path, v.Partition.Number, err)
		}
		return r, v, nil
	}
	return nil, nil, winreg.ErrNotWindows
}

// flushRegistry writes hives changed through the registry into their
// files, before the file systems flush.
func (im *Image) flushRegistry() error {
	if im.reg == nil {
		return nil
	}
	return im.reg.Flush()
}
