package mount

import (
	"errors"
	"fmt"
	"io"

	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/luks"
	"github.com/offvm/offvm/volume"
)

func init() { registerLayer("luks", luksLayer{}) }

// luksLayer unlocks LUKS1 and LUKS2 partitions with the passphrases and
// key files of --keys (a key file's bytes are its passphrase, as
// cryptsetup --key-file uses them).
type luksLayer struct{}

func (luksLayer) Probe(dev io.ReaderAt) bool { return luks.Probe(dev) }

func (luksLayer) Open(dev volume.Device, secrets *keys.Set, readOnly bool) (volume.Device, LayerInfo, error) {
	h, err := luks.ReadHeader(dev, dev.Size())
	if err != nil {
		info := LayerInfo{Type: "luks", Locked: true, Problems: []string{err.Error()}}
		if errors.Is(err, luks.ErrUnsupported) {
			info.Problems = []string{"cannot be unlocked by offvm: " + err.Error()}
		}
		return nil, info, fmt.Errorf("luks header: %w", err)
	}
	info := LayerInfo{Type: fmt.Sprintf("luks%d", h.Version), Locked: true, GUID: h.UUID, Description: h.Label}
	for _, s := range h.Slots {
		info.Protectors = append(info.Protectors, fmt.Sprintf("keyslot %d (%s)", s.ID, s.KDF.Type))
	}
	var tries [][]byte
	for _, s := range secrets.For(h.UUID, h.Label, keys.Passphrase, keys.KeyFile) {
		tries = append(tries, s.Value)
	}
	if len(tries) == 0 {
		info.Problems = append(info.Problems, "locked: no passphrase: or keyfile: in --keys for LUKS volume "+h.UUID)
		return nil, info, nil
	}
	d, slot, err := luks.Open(dev, h, tries, readOnly)
	if errors.Is(err, luks.ErrNoKey) {
		info.Problems = append(info.Problems, fmt.Sprintf("locked: none of the %d secrets in %s for LUKS volume %s opens a keyslot", len(tries), secrets.File, h.UUID))
		return nil, info, nil
	}
	if err != nil {
		info.Problems = append(info.Problems, err.Error())
		return nil, info, err
	}
	info.Locked = false
	info.Protectors = append(info.Protectors, fmt.Sprintf("unlocked with keyslot %d", slot))
	return d, info, nil
}
