package fs

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/internal/noopen"
)

// MountOptions are the FUSE-level choices of `offvm mount`.
type MountOptions struct {
	AllowOther bool
	Debug      bool
}

// Mount serves the tree at mountpoint. Throughput settings: 1 MiB reads
// and writes, kernel read-ahead of 1 MiB, kernel page cache kept (we are
// the only writer inside images), parallel requests, no splice.
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
			// Every READ offvm serves is bytes in memory (ReadResultData):
			// go-fuse would still try a splice for each reply (a pipe
			// from its pool, the header written into it, then a drain
			// when the data turns out to have no descriptor), three
			// wasted system calls per READ, 8% of the daemon's CPU under
			// a parallel scan; without splice the reply is one writev.
			DisableSplice: true,
			// O_TRUNC arrives with open, not as a separate truncate: a
			// registry value is replaced in one step at close, never
			// empty in the hive (a read racing the write may still get
			// nothing: the kernel sets the size to 0 itself at the open).
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
	raw := fs.NewNodeFS(t.Root(), opts)
	if t.opts.ReadOnly {
		raw = noopen.Wrap(raw) // no OPEN, FLUSH, RELEASE per file: internal/noopen
	}
	srv, err := mountCloseOnExec(mountpoint, raw, opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	return srv, nil
}

// mountCloseOnExec mounts with the /dev/fuse descriptor kept from every
// child process. go-fuse's direct mount (as root) returns the descriptor
// without close-on-exec, so every program offvm starts (dpkg, maintainer
// scripts, helpers) inherited it: when offvm died, those children kept
// the connection alive, and a child that touched the mount blocked
// forever (D state, request_wait_answer) waiting for a daemon that was
// gone. Holding syscall.ForkLock for reading while the descriptor is open
// without the flag keeps any fork from seeing it; the direct mount is made
// strict meanwhile, because its fusermount fallback forks (and would wait
// for the lock we hold): when it fails, the fallback runs after, unlocked
// (go-fuse sets close-on-exec on that path itself).
func mountCloseOnExec(mountpoint string, raw fuse.RawFileSystem, mo fuse.MountOptions) (*fuse.Server, error) {
	var srv *fuse.Server
	var err error
	runtime.GOMAXPROCS(baseProcs()) // go-fuse sizes its readers by it: see spareProcs
	if mo.DirectMount {
		strict := mo
		strict.DirectMountStrict = true
		syscall.ForkLock.RLock()
		srv, err = fuse.NewServer(raw, mountpoint, &strict)
		closeOnExecFuse()
		syscall.ForkLock.RUnlock()
		if err != nil {
			slog.Debug("direct FUSE mount failed, trying fusermount", "mountpoint", mountpoint, "err", err)
			mo.DirectMount = false
		}
	}
	if srv == nil {
		if srv, err = fuse.NewServer(raw, mountpoint, &mo); err != nil {
			return nil, err
		}
	}
	spareProcs()
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return srv, nil
}

// closeOnExecFuse marks every /dev/fuse descriptor of this process
// close-on-exec (they all should be; see mountCloseOnExec).
func closeOnExecFuse() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		slog.Warn("cannot list this process's descriptors", "err", err)
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if dst, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && dst == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
}

// baseProcs is GOMAXPROCS as the process started.
var baseProcs = sync.OnceValue(func() int { return runtime.GOMAXPROCS(0) })

// spareProcs gives the Go scheduler more Ps than the goroutines that sit
// in blocking system calls. go-fuse keeps up to GOMAXPROCS+1 goroutines
// blocked in read(2) on /dev/fuse, each holding a P while it waits, and
// the handlers block in preads of the image: with every P in a system
// call, the runtime's monitor thread (sysmon) takes the Ps back and
// hands them on, waking every 20 us to do so. That cost the daemon about
// one context switch in three and ~12% of its CPU under rsync's lookups
// and a parallel scan (voluntary switches of a second rsync 5,000-5,900
// -> 3,750-4,350, daemon CPU 150-200 -> 120-180 ms, 5 runs each; scan:
// nanosleeps 45,800 -> 27,600). Four spare Ps keep one idle, so sysmon
// sleeps. Raised after the server is made, whose reader count it sets.
func spareProcs() { runtime.GOMAXPROCS(baseProcs() + 4) }
