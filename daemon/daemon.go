// Package daemon runs `offvm mount`: the FUSE server, its control socket,
// signals, and the commit of every changed image when the tree is
// unmounted.
package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/fs"
	"github.com/offvm/offvm/mount"
)

// Options are `offvm mount`'s.
type Options struct {
	Library    string
	Mountpoint string
	ReadOnly   bool
	AllowOther bool
	NoSecrets  bool
	PidFile    string
	Debug      bool
	// Info renders info.json for an open image (inspection); nil means
	// the container/partition facts only.
	Info func(*mount.Image) any
	// Drives gives an image's drive letters (inspection); nil for none.
	Drives func(*mount.Image) map[string]string
	// VMDirs are folders of VM configurations outside the library
	// (mount --libvirt DIR).
	VMDirs []string
}

// Daemon is a running mount.
type Daemon struct {
	opts Options
	lib  string
	tree *fs.Tree
	srv  *fuse.Server
	ln   net.Listener

	committed chan struct{} // closed when the daemon is over
	err       error         // the last commit's verdict, set before committed closes
	lines     []string      // the last commit's lines

	mu      sync.Mutex
	req     *unmountReq // the unmount request waiting for a verdict, if any
	discard bool
	mounted bool // the tree is visible (false while a failed commit waits detached)
	retry   chan struct{}

	roundLines []string // lines of the commit under way

	idleMu sync.Mutex // held by an idle pass; the commit waits for it
}

// unmountReq is one `offvm unmount` waiting for the daemon's verdict.
type unmountReq struct {
	notify  func(reply) // streams progress and lines to it
	replied chan struct{}
}

// Start mounts the library and returns when the tree is visible.
func Start(opts Options) (*Daemon, error) {
	lib, err := filepath.Abs(opts.Library)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("library %s: %w", opts.Library, err)
	}
	if st, err := os.Stat(opts.Mountpoint); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("mountpoint %s: not a directory", opts.Mountpoint)
	}
	d := &Daemon{opts: opts, lib: lib, committed: make(chan struct{}), retry: make(chan struct{}, 1)}
	d.tree = d.newTree()
	if err := ensureRuntimeDir(RuntimeDir()); err != nil {
		return nil, err
	}
	sock := SocketPath(opts.Mountpoint)
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return nil, fmt.Errorf("mountpoint %s: another offvm daemon already serves it", opts.Mountpoint)
	}
	os.Remove(sock) // a daemon that died left it
	d.ln, err = net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", sock, err)
	}
	if err := d.mount(); err != nil {
		d.ln.Close()
		os.Remove(sock)
		return nil, err
	}
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			d.srv.Unmount()
			d.ln.Close()
			os.Remove(sock)
			return nil, fmt.Errorf("pid file %s: %w", opts.PidFile, err)
		}
	}
	go d.serveControl()
	go d.watchSignals()
	go d.closeIdle(idleTime())
	go d.run()
	slog.Info("mounted", "library", lib, "mountpoint", opts.Mountpoint, "ro", opts.ReadOnly)
	return d, nil
}

func (d *Daemon) newTree() *fs.Tree {
	return fs.NewTree(fs.Options{Library: d.lib, ReadOnly: d.opts.ReadOnly,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Info: d.opts.Info, Drives: d.opts.Drives, NoSecrets: d.opts.NoSecrets, VMDirs: d.opts.VMDirs})
}

// mount serves d.tree at the mountpoint and waits until it is visible.
func (d *Daemon) mount() error {
	srv, err := fs.Mount(d.opts.Mountpoint, d.tree, fs.MountOptions{AllowOther: d.opts.AllowOther, Debug: d.opts.Debug})
	if err != nil {
		return err
	}
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return fmt.Errorf("mounting %s: %w", d.opts.Mountpoint, err)
	}
	d.mu.Lock()
	d.srv, d.mounted = srv, true
	d.mu.Unlock()
	return nil
}

// Lines are the per-image commit lines (for a foreground daemon to print).
func (d *Daemon) Lines() []string { return d.lines }

// Wait blocks until the daemon is over: the tree unmounted, every change
// committed (or discarded), and an `offvm unmount` that asked told the
// verdict.
func (d *Daemon) Wait() error {
	<-d.committed
	return d.err
}

// run commits each time the kernel lets go of the tree. When every image
// committed, the daemon ends. When one failed, its changes are still in
// memory: the tree is mounted again with those images in it, so nothing
// the user did is lost, and the next unmount tries again.
func (d *Daemon) run() {
	for {
		d.mu.Lock()
		srv := d.srv
		d.mu.Unlock()
		if srv != nil {
			srv.Wait()
		}
		d.idleMu.Lock() // no idle pass closes an image under the commit
		d.mu.Lock()
		d.mounted = false
		d.mu.Unlock()
		d.idleMu.Unlock()
		kept, err := d.commitAll()
		d.lines, d.err = d.roundLines, err
		if len(kept) == 0 {
			d.end()
			return
		}
		tree := d.newTree()
		for _, im := range kept {
			tree.Adopt(im)
		}
		d.mu.Lock()
		d.tree, d.srv = tree, nil
		d.mu.Unlock()
		if merr := d.mount(); merr != nil {
			// The changes stay in memory; `offvm unmount` retries the
			// commit without a tree.
			slog.Error("mounting again after a failed commit", "err", merr)
			d.err = fmt.Errorf("%w; mounting %s again failed too (%v): the changes are held by the daemon (pid %d) until offvm unmount %s succeeds",
				err, d.opts.Mountpoint, merr, os.Getpid(), d.opts.Mountpoint)
		} else {
			slog.Warn("commit failed; the tree is mounted again with the uncommitted changes", "err", err)
			d.err = fmt.Errorf("%w; %s stays mounted with every change: fix the cause and run offvm unmount %s again (--discard drops them)",
				err, d.opts.Mountpoint, d.opts.Mountpoint)
		}
		d.reply(d.err)
		if !d.isMounted() {
			<-d.retry
		}
	}
}

// IdleEnv sets how long an image may stay unused before the daemon
// closes it (a Go duration; "0" never closes). The default is a minute.
const IdleEnv = "OFFVM_IDLE_CLOSE"

func idleTime() time.Duration {
	if v := os.Getenv(IdleEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
		slog.Warn("ignoring a bad "+IdleEnv, "value", v)
	}
	return time.Minute
}

// maxOpenImages caps the images kept open without changes (each costs
// about a megabyte: tables, file system roots, hive pages): beyond it the
// least recently used are closed, however recently. Images holding
// changes, or whose files the kernel holds, are never closed.
const maxOpenImages = 64

// closeIdle closes images that have been idle for idle, and images beyond
// maxOpenImages, so that memory follows the images in use rather than
// every image ever visited.
func (d *Daemon) closeIdle(idle time.Duration) {
	if idle == 0 {
		return
	}
	tick := time.NewTicker(min(max(idle/4, 100*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-d.committed:
			return
		case <-tick.C:
		}
		d.idleMu.Lock()
		d.mu.Lock()
		tree, mounted := d.tree, d.mounted
		d.mu.Unlock()
		n := 0
		if mounted { // once unmounted the commit owns the images
			n = tree.CloseIdle(idle, maxOpenImages)
		}
		d.idleMu.Unlock()
		if n > 0 {
			slog.Info("closed idle images", "count", n)
			debug.FreeOSMemory()
		}
	}
}

func (d *Daemon) isMounted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mounted
}

// end releases the runtime files and tells whoever waits.
func (d *Daemon) end() {
	d.ln.Close()
	os.Remove(SocketPath(d.opts.Mountpoint))
	if d.opts.PidFile != "" {
		os.Remove(d.opts.PidFile)
	}
	d.reply(d.err)
	close(d.committed)
}

// reply sends the verdict to a waiting unmount, if any, and forgets it.
func (d *Daemon) reply(err error) {
	d.mu.Lock()
	req := d.req
	d.req = nil
	d.mu.Unlock()
	if req == nil {
		return
	}
	for _, l := range d.lines {
		req.notify(reply{Line: l})
	}
	r := reply{Done: true}
	if err != nil {
		r.Error = err.Error()
	}
	req.notify(r)
	close(req.replied)
}

// commitAll commits (or, with --discard, drops) every image's changes,
// image by image: one failure never costs another image, and a failed
// image is left exactly as it was, its changes kept in memory and
// returned (still open) for the tree to show again. Each changed image
// gets one line.
func (d *Daemon) commitAll() (kept []*mount.Image, err error) {
	d.roundLines = nil
	var errs []error
	for _, im := range d.tree.Images() {
		if err := d.commitOne(im); err != nil {
			if mount.Pending(im.Path) {
				// The journal is sealed but could not be applied (nor
				// undone): the next commit attempt completes it first.
				err = fmt.Errorf("%w; its journal is kept and the next commit (or offvm check %s) completes it", err, im.Path)
			} else {
				err = fmt.Errorf("%w; the image is left as it was", err)
			}
			errs = append(errs, err)
			d.roundLines = append(d.roundLines, "failed     "+im.Path+": "+err.Error())
			// HoldsChanges, not Dirty: a hive that would not serialise
			// holds its changes outside the overlay
			if !d.discarding() && im.HoldsChanges() {
				kept = append(kept, im)
				continue
			}
		}
		if err := im.Close(); err != nil {
			slog.Warn("closing image", "image", im.Path, "err", err)
		}
	}
	if len(errs) > 0 {
		return kept, fmt.Errorf("%d image(s) not committed", len(errs))
	}
	return nil, nil
}

func (d *Daemon) commitOne(im *mount.Image) error {
	if d.discarding() {
		if im.Dirty() {
			d.roundLines = append(d.roundLines, "discarded  "+im.Path)
		}
		return im.Discard()
	}
	res, err := im.CommitProgress(d.progress(im.Path))
	if err != nil {
		return err
	}
	if res.Changed > 0 || res.Written > 0 {
		d.roundLines = append(d.roundLines, fmt.Sprintf("committed  %s: %s changed, %s written in %s",
			im.Path, humanize.IBytes(uint64(res.Changed)), humanize.IBytes(uint64(res.Written)), res.Duration.Round(time.Millisecond)))
		slog.Info("committed", "image", im.Path, "changed", res.Changed, "written", res.Written, "took", res.Duration)
	}
	return nil
}

func (d *Daemon) discarding() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.discard
}

// progress reports a commit's advance to a waiting `offvm unmount`, at
// most a few times a second.
func (d *Daemon) progress(image string) func(done, total int64) {
	d.mu.Lock()
	req := d.req
	d.mu.Unlock()
	if req == nil {
		return nil
	}
	notify := req.notify
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 200*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		pct := 100
		if total > 0 {
			pct = int(done * 100 / total)
		}
		notify(reply{Progress: fmt.Sprintf("committing %s: %d%% of %s", image, pct, humanize.IBytes(uint64(total)))})
	}
}

func (d *Daemon) watchSignals() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	for range ch {
		slog.Info("signal: unmounting")
		d.mu.Lock()
		srv, mounted := d.srv, d.mounted
		d.mu.Unlock()
		if !mounted {
			select { // changes held without a tree: try the commit again
			case d.retry <- struct{}{}:
			default:
			}
			continue
		}
		if err := unmountTree(srv, d.opts.Mountpoint); err != nil {
			slog.Error("unmount failed", "err", err)
		}
	}
}

func (d *Daemon) serveControl() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		go d.handle(c)
	}
}

func (d *Daemon) handle(c net.Conn) {
	defer c.Close()
	var req request
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		return
	}
	enc := json.NewEncoder(c)
	if req.Cmd != "unmount" {
		enc.Encode(reply{Done: true, Error: "unknown request " + strconv.Quote(req.Cmd)})
		return
	}
	var encMu sync.Mutex
	ur := &unmountReq{replied: make(chan struct{}), notify: func(r reply) {
		encMu.Lock()
		defer encMu.Unlock()
		enc.Encode(r)
	}}
	d.mu.Lock()
	if d.req != nil {
		d.mu.Unlock()
		enc.Encode(reply{Done: true, Error: d.opts.Mountpoint + ": an unmount is already under way"})
		return
	}
	d.req, d.discard = ur, req.Discard
	srv, mounted := d.srv, d.mounted
	d.mu.Unlock()
	if !mounted {
		// a failed commit left the changes in memory, without a tree
		select {
		case d.retry <- struct{}{}:
		default:
		}
	} else if err := unmountTree(srv, d.opts.Mountpoint); err != nil {
		d.mu.Lock()
		d.req = nil
		d.mu.Unlock()
		enc.Encode(reply{Done: true, Error: fmt.Sprintf("%s: cannot unmount: %v (is a shell or program using it?)", d.opts.Mountpoint, err)})
		return
	}
	<-ur.replied
}
