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
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/fusefs"
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
	tree *fusefs.Tree
	srv  *fuse.Server
	ln   net.Listener

	once      sync.Once
	committed chan struct{} // closed when the commit is over
	err       error         // the commit's verdict, set before committed closes
	discard   bool
	lines     []string

	mu      sync.Mutex
	pending bool          // an unmount request waits for the verdict
	replied chan struct{} // closed once it has been told
	notify  func(reply)   // streams progress to a waiting unmount, if any
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
	d := &Daemon{opts: opts, committed: make(chan struct{}), replied: make(chan struct{})}
	d.tree = fusefs.NewTree(fusefs.Options{Library: lib, ReadOnly: opts.ReadOnly,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Info: opts.Info, Drives: opts.Drives, NoSecrets: opts.NoSecrets, VMDirs: opts.VMDirs})
	if err := os.MkdirAll(RuntimeDir(), 0o700); err != nil {
		return nil, fmt.Errorf("runtime directory %s: %w", RuntimeDir(), err)
	}
	sock := SocketPath(opts.Mountpoint)
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return nil, fmt.Errorf("mountpoint %s: another offvm daemon already serves it", opts.Mountpoint)
	}
	os.Remove(sock)
	d.ln, err = net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", sock, err)
	}
	d.srv, err = fusefs.Mount(opts.Mountpoint, d.tree, fusefs.MountOptions{AllowOther: opts.AllowOther, Debug: opts.Debug})
	if err != nil {
		d.ln.Close()
		os.Remove(sock)
		return nil, err
	}
	if err := d.srv.WaitMount(); err != nil {
		d.srv.Unmount()
		d.ln.Close()
		return nil, fmt.Errorf("mounting %s: %w", opts.Mountpoint, err)
	}
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			d.srv.Unmount()
			d.ln.Close()
			return nil, fmt.Errorf("pid file %s: %w", opts.PidFile, err)
		}
	}
	go d.serveControl()
	go d.watchSignals()
	go func() { d.srv.Wait(); d.finish() }()
	slog.Info("mounted", "library", lib, "mountpoint", opts.Mountpoint, "ro", opts.ReadOnly)
	return d, nil
}

// Lines are the per-image commit lines (for a foreground daemon to print).
func (d *Daemon) Lines() []string { return d.lines }

// Wait blocks until the tree is unmounted, the commit is over, and an
// `offvm unmount` that asked for it has been told the verdict.
func (d *Daemon) Wait() error {
	<-d.committed
	d.mu.Lock()
	pending := d.pending
	d.mu.Unlock()
	if pending {
		<-d.replied
	}
	return d.err
}

// finish runs once the kernel has let go of the tree: commit (or discard)
// and close every image, then release the runtime files.
func (d *Daemon) finish() {
	d.once.Do(func() {
		d.err = d.commitAll()
		d.ln.Close()
		os.Remove(SocketPath(d.opts.Mountpoint))
		if d.opts.PidFile != "" {
			os.Remove(d.opts.PidFile)
		}
		close(d.committed)
	})
}

// commitAll commits (or, with --discard, drops) every image's changes,
// image by image: one failure never costs another image, and a failed
// image is left exactly as it was. Each changed image gets one line.
func (d *Daemon) commitAll() error {
	var errs []error
	for _, im := range d.tree.Images() {
		if err := d.commitOne(im); err != nil {
			if mount.Pending(im.Path) {
				// The journal is sealed but could not be applied (nor
				// undone): the image is whole-old now and becomes whole-new
				// when the next offvm command recovers it.
				err = fmt.Errorf("%w; its journal is kept and the next offvm command (offvm check %s) completes the commit", err, im.Path)
			} else {
				err = fmt.Errorf("%w; the image is left as it was", err)
			}
			errs = append(errs, err)
			d.lines = append(d.lines, "failed     "+im.Path+": "+err.Error())
		}
		if err := im.Close(); err != nil {
			slog.Warn("closing image", "image", im.Path, "err", err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d image(s) not committed", len(errs))
	}
	return nil
}

func (d *Daemon) commitOne(im *mount.Image) error {
	if d.discard {
		if im.Dirty() {
			d.lines = append(d.lines, "discarded  "+im.Path)
		}
		return im.Discard()
	}
	res, err := im.CommitProgress(d.progress(im.Path))
	if err != nil {
		return err
	}
	if res.Changed > 0 || res.Written > 0 {
		d.lines = append(d.lines, fmt.Sprintf("committed  %s: %s changed, %s written in %s",
			im.Path, humanize.IBytes(uint64(res.Changed)), humanize.IBytes(uint64(res.Written)), res.Duration.Round(time.Millisecond)))
		slog.Info("committed", "image", im.Path, "changed", res.Changed, "written", res.Written, "took", res.Duration)
	}
	return nil
}

// progress reports a commit's advance to a waiting `offvm unmount`, at
// most a few times a second.
func (d *Daemon) progress(image string) func(done, total int64) {
	d.mu.Lock()
	notify := d.notify
	d.mu.Unlock()
	if notify == nil {
		return nil
	}
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
		if err := d.srv.Unmount(); err != nil {
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
	d.mu.Lock()
	if d.pending {
		d.mu.Unlock()
		enc.Encode(reply{Done: true, Error: d.opts.Mountpoint + ": an unmount is already under way"})
		return
	}
	d.pending = true
	d.discard = req.Discard
	var encMu sync.Mutex
	d.notify = func(r reply) {
		encMu.Lock()
		defer encMu.Unlock()
		enc.Encode(r)
	}
	d.mu.Unlock()
	if err := d.srv.Unmount(); err != nil {
		d.mu.Lock()
		d.pending = false
		d.mu.Unlock()
		enc.Encode(reply{Done: true, Error: fmt.Sprintf("%s: cannot unmount: %v (is a shell or program using it?)", d.opts.Mountpoint, err)})
		return
	}
	<-d.committed
	defer close(d.replied)
	for _, l := range d.lines {
		d.notify(reply{Line: l})
	}
	r := reply{Done: true}
	if d.err != nil {
		r.Error = d.err.Error()
	}
	d.notify(r)
}
