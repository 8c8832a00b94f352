package bitlocker

import (
	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/volume"
)

// Open reads dev's metadata and unlocks it with the first of secrets that
// fits (none is needed for a clear key). It only reads dev.
func Open(dev volume.Device, secrets []keys.Secret) (*Device, *Metadata, *VolumeKey, error) {
	h, m, err := ReadMetadata(dev)
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := Unlock(m, secrets)
	if err != nil {
		return nil, m, nil, err
	}
	d, err := NewDevice(dev, h, m, k)
	return d, m, k, err
}

// Reserved lists the byte ranges of the volume that hold BitLocker's own
// data (metadata blocks, the relocated first sectors) as [start, end)
// pairs: they read as zeros and a file system inside never owns them.
func (d *Device) Reserved() [][2]int64 {
	out := make([][2]int64, 0, len(d.reserved))
	for _, r := range d.reserved {
		out = append(out, [2]int64{r.start, r.end})
	}
	return out
}
