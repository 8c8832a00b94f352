package mount

import (
	"io"
	"sort"

	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/volume"
)

// A layer sits between a partition and its file system: BitLocker and
// LUKS decrypt a partition, and the device they give back is probed for a
// file system like any partition. Each layer registers itself from an
// init function in its own file (bitlocker.go, luks.go).
type layer interface {
	// Probe says whether dev starts with this layer's header.
	Probe(dev io.ReaderAt) bool
	// Open unlocks dev with the secrets. A volume no secret unlocks is
	// not an error: Open returns a nil device and info.Locked. readOnly
	// asks for a device that refuses writes.
	Open(dev volume.Device, secrets *keys.Set, readOnly bool) (volume.Device, LayerInfo, error)
}

// LayerInfo is what info.json shows of an encrypted partition.
type LayerInfo struct {
	Type        string   `json:"type"` // "bitlocker", "luks1", "luks2"
	Locked      bool     `json:"locked"`
	GUID        string   `json:"guid,omitempty"`
	Description string   `json:"description,omitempty"`
	Protectors  []string `json:"protectors,omitempty"`
	// Method is the cipher of an unlocked volume, UnlockedWith the kind of
	// protector that opened it ("recovery password", "clear key").
	Method       string `json:"method,omitempty"`
	UnlockedWith string `json:"unlocked_with,omitempty"`
	// ReadOnly says why the unlocked volume cannot be written ("" when it can).
	ReadOnly string   `json:"read_only_reason,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

var layers = map[string]layer{}

func registerLayer(name string, l layer) { layers[name] = l }

// probeLayer names the layer whose header dev holds, or "".
func probeLayer(dev io.ReaderAt) (string, layer) {
	names := make([]string, 0, len(layers))
	for n := range layers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if layers[n].Probe(dev) {
			return n, layers[n]
		}
	}
	return "", nil
}

// unlocked is a partition's layer, opened once: the LVM scan and the
// partition's own volume share it (a KDF such as Argon2 costs seconds).
type unlocked struct {
	name string
	dev  volume.Device // nil while locked
	info LayerInfo
	err  error
}

// unlock opens the layer on partition n's device raw, or returns nil
// when raw holds none.
func (im *Image) unlock(n int, raw volume.Device) *unlocked {
	im.layerMu.Lock()
	defer im.layerMu.Unlock()
	if u, ok := im.layers[n]; ok {
		return u
	}
	if im.layers == nil {
		im.layers = map[int]*unlocked{}
	}
	name, l := probeLayer(raw)
	if l == nil {
		im.layers[n] = nil
		return nil
	}
	u := &unlocked{name: name}
	u.dev, u.info, u.err = l.Open(raw, im.opts.Keys, im.readOnly != "")
	if u.info.Type == "" {
		u.info.Type = name
	}
	if u.err != nil || u.dev == nil {
		u.dev = nil
	}
	im.layers[n] = u
	return u
}
