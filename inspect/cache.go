package inspect

import (
	"log/slog"
	"path/filepath"

	"github.com/offvm/offvm/inventory"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk/detect"
)

// ImageCached is Image through the inventory cache: an image none of
// whose files changed since it was last described costs a few stat calls
// (and a lock probe); any other is opened and its description cached.
// Descriptions with an error, and images with an interrupted commit, are
// never cached. The caller flushes the cache when done (Cache.Flush).
func ImageCached(c *inventory.Cache, path string) mount.Info {
	if c != nil && !cacheable(path) {
		return Image(path)
	}
	return throughCache(c, path, func() mount.Info { return Image(path) })
}

// throughCache returns the cached description of path when it is fresh,
// else describe()'s, which it caches.
func throughCache(c *inventory.Cache, path string, describe func() mount.Info) mount.Info {
	if inf, ok := cached(c, path); ok {
		slog.Debug("inventory cache hit", "image", path)
		recheckLock(&inf)
		return inf
	}
	if c == nil {
		return describe()
	}
	before, ok := inventory.Snapshot(path, nil)
	inf := describe()
	if ok && inf.Error == nil {
		c.Put(path, before, parentChain(inf), inf)
	}
	return inf
}

// cached is the fresh cached description of path. An interrupted commit
// beside the image is a sidecar the entry saw absent, so it is a miss.
func cached(c *inventory.Cache, path string) (mount.Info, bool) {
	if c == nil {
		return mount.Info{}, false
	}
	b, ok := c.Get(path)
	if !ok {
		return mount.Info{}, false
	}
	inf, err := decodeKnownInfo(b)
	return inf, err == nil
}

// recheckLock asks again whether another program holds the image, with
// the lock probe (no lock is taken, so a qemu starting meanwhile never
// trips over it).
func recheckLock(inf *mount.Info) {
	if !inf.Writable && (inf.ReadOnlyReason == nil || !mount.IsLockReason(*inf.ReadOnlyReason)) {
		return // read-only for a reason of its own (format, snapshots)
	}
	if err := txn.Probe(inf.Path); err != nil {
		why := mount.LockReason(err)
		inf.Writable, inf.ReadOnlyReason = false, &why
		return
	}
	inf.Writable, inf.ReadOnlyReason = true, nil
}

// parentChain lists the image's parents, nearest first: a change to any
// of them changes what the image holds.
func parentChain(inf mount.Info) []string {
	var out []string
	p := ""
	if inf.Parent != nil {
		p = *inf.Parent
	}
	for p != "" && len(out) < 32 {
		out = append(out, p)
		d, err := detect.Open(p, detect.Options{})
		if err != nil {
			break
		}
		p = d.Info().Parent
		d.Close()
	}
	return out
}

// parentsOf is library.Parents over paths: the absolute paths of the
// images some image of paths builds on. An image already described (in
// described, by index) gives its parent from its description, one whose
// description is fresh in the cache from there; only the others (images
// of other shards) are opened, headers only.
func parentsOf(c *inventory.Cache, paths []string, described map[string]mount.Info) map[string]bool {
	out := map[string]bool{}
	for _, path := range paths {
		parent := ""
		if inf, ok := described[path]; ok && inf.Error == nil {
			parent = deref(inf.Parent)
		} else if inf, ok := cached(c, path); ok {
			parent = deref(inf.Parent)
		} else if d, err := detect.Open(path, detect.Options{}); err == nil {
			parent = d.Info().Parent
			d.Close()
		}
		if parent != "" {
			if abs, err := filepath.Abs(parent); err == nil {
				out[abs] = true
			}
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// cacheable reports whether the description of path depends on its own
// files only: a VM's disk also depends on the state files beside it, and a
// disk in an OVA on its package, which the cache keys do not cover.
func cacheable(path string) bool {
	if _, _, inOVA := library.InOVA(path); inOVA || library.IsOVA(path) {
		return false
	}
	_, hasVM := library.VMsOf(path).For(path)
	return !hasVM
}
