package mount

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/offvm/offvm/bitlocker"
	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/volume"
)

func init() { registerLayer("bitlocker", bitlockerLayer{}) }

// defaultKeys are the --keys secrets of this process, used by every open
// whose Options carry none (the daemon's tree, inspect, patch, ...).
var defaultKeys atomic.Pointer[keys.Set]

// SetKeys makes s the secrets every image is opened with unless its
// Options name others. nil forgets them.
func SetKeys(s *keys.Set) { defaultKeys.Store(s) }

// bitlockerLayer opens BitLocker partitions (-FVE-FS-).
type bitlockerLayer struct{}

func (bitlockerLayer) Probe(dev io.ReaderAt) bool {
	b := make([]byte, 512)
	if _, err := dev.ReadAt(b, 0); err != nil {
		return false
	}
	_, err := bitlocker.ParseHeader(b)
	return !errors.Is(err, bitlocker.ErrNotBitLocker)
}

// Open unwraps the volume key with the first secret that fits. Unlocking
// only reads; the device it returns encrypts writes as Windows does. A
// read-only image needs nothing more here: its engines are opened
// read-only and it has no overlay to write to.
func (bitlockerLayer) Open(dev volume.Device, secrets *keys.Set, readOnly bool) (volume.Device, LayerInfo, error) {
	info := LayerInfo{Type: "bitlocker", Locked: true}
	h, m, err := bitlocker.ReadMetadata(dev)
	if err != nil {
		info.Problems = []string{err.Error()}
		return nil, info, fmt.Errorf("damaged BitLocker metadata: %w", err)
	}
	info.GUID, info.Description, info.Protectors = m.VolumeGUID, m.Description, m.Protectors()
	if info.Protectors == nil {
		info.Protectors = []string{}
	}
	cands := secrets.For(m.VolumeGUID, m.Description, keys.Recovery, keys.Password, keys.BEK)
	k, err := bitlocker.Unlock(m, cands)
	if errors.Is(err, bitlocker.ErrNoSecret) {
		if len(cands) == 0 {
			return nil, info, nil // locked, and nothing was offered: not an error
		}
		err = fmt.Errorf("no secret in %s unlocks %s", secrets.File, volumeName(m))
		info.Problems = []string{err.Error()}
		return nil, info, err
	}
	if err != nil {
		info.Problems = []string{err.Error()}
		return nil, info, fmt.Errorf("%s: %w", volumeName(m), err)
	}
	d, err := bitlocker.NewDevice(dev, h, m, k)
	if err != nil {
		info.Problems = []string{err.Error()}
		return nil, info, fmt.Errorf("%s: %w", volumeName(m), err)
	}
	info.Locked = false
	info.Method = bitlocker.MethodName(k.Method)
	info.UnlockedWith = k.Via
	info.ReadOnly = d.ReadOnlyReason()
	return d, info, nil
}

// volumeName names a volume in messages: its GUID and description.
func volumeName(m *bitlocker.Metadata) string {
	s := "BitLocker volume {" + m.VolumeGUID + "}"
	if d := strings.TrimSpace(m.Description); d != "" {
		s += fmt.Sprintf(" (%q)", d)
	}
	return s
}
