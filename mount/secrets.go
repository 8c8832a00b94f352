package mount

import (
	"path"
	"strconv"
	"sync"

	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/volume"
)

// secretHives are the hives --no-secrets keeps from the user: password
// hashes (SAM) and LSA secrets (SECURITY).
var secretHives = []string{"SAM", "SECURITY"}

// secrets is what --no-secrets hides of an image, found once.
type secrets struct {
	once  sync.Once
	vol   int                   // the partition holding them
	inos  map[volume.Ino]string // engine inode → path in the volume
	paths []string              // "p3/Windows/System32/config/SAM", for info.json
}

// Secret reports whether, under --no-secrets, the file ino of partition
// vol is one the user may not read: SAM or SECURITY of the Windows
// system volume, or one of their logs. Reading it through p*/ would give
// away what the registry view hides.
func (im *Image) Secret(vol int, ino volume.Ino) bool {
	if !im.opts.NoSecrets {
		return false
	}
	s := im.findSecrets()
	_, ok := s.inos[ino]
	return ok && s.vol == vol
}

// Hidden lists, under --no-secrets, the files refused to the user, as
// paths in the tree; nil otherwise.
func (im *Image) Hidden() []string {
	if !im.opts.NoSecrets {
		return nil
	}
	return im.findSecrets().paths
}

// NoSecrets says whether the image was opened with --no-secrets, which
// also refuses its raw views (disk): they hold the same bytes.
func (im *Image) NoSecrets() bool { return im.opts.NoSecrets }

func (im *Image) findSecrets() *secrets {
	s := &im.secrets
	s.once.Do(func() {
		s.inos = map[volume.Ino]string{}
		_, v, err := im.Registry()
		if err != nil || v == nil || v.FS == nil {
			return
		}
		s.vol = v.Partition.Number
		for _, h := range secretHives {
			for _, suffix := range []string{"", ".LOG", ".LOG1", ".LOG2"} {
				p := path.Join(winreg.ConfigDir, h+suffix)
				a, err := volume.Resolve(v.FS, p)
				if err != nil || !a.Mode.IsRegular() {
					continue
				}
				s.inos[a.Ino] = p
				s.paths = append(s.paths, "p"+strconv.Itoa(v.Partition.Number)+"/"+p)
			}
		}
	})
	return s
}
