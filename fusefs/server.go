package fusefs

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// MountOptions are the FUSE-level choices of `offvm mount`.
type MountOptions struct {
	AllowOther bool
	Debug      bool
}

// Mount serves the tree at mountpoint. Throughput settings: 1 MiB reads
// and writes, kernel read-ahead of 1 MiB, kernel page cache kept (we are
// the only writer inside images), parallel requests.
func Mount(mountpoint string, t *Tree, mo MountOptions) (*fuse.Server, error) {
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:   mo.AllowOther,
			FsName:       "offvm:" + t.opts.Library,
			Name:         "offvm",
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			DirectMount:  os.Geteuid() == 0,
			Debug:        mo.Debug,
			// O_TRUNC arrives with open, not as a separate truncate: a
			// registry value is replaced in one step, never seen empty.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
			// An engine bug must cost one request, never the daemon.
			PanicHandler: func(r any) fuse.Status {
				slog.Error("panic in FUSE request", "panic", r)
				return fuse.EIO
			},
		},
		EntryTimeout:    &volumeTimeout,
		AttrTimeout:     &volumeTimeout,
		NegativeTimeout: &libraryTimeout,
		UID:             t.opts.UID,
		GID:             t.opts.GID,
	}
	if mo.AllowOther {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
	}
	if t.opts.ReadOnly {
		// A read-only super block: the kernel then keeps a file's
		// attributes valid after a read (it would otherwise drop the
		// atime and ask for GETATTR at the next stat: one round trip per
		// file on a scanner's second pass) and refuses writes itself.
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	srv, err := fs.Mount(mountpoint, t.Root(), opts)
	if err != nil {
		return nil, fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	return srv, nil
}
