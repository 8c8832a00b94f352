package fs

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// Idle images are closed so that the daemon's memory follows what is in
// use, not what was ever visited: a scanner reading the info.json of
// 10,000 images must not keep 10,000 images open. An image is closed once
// it was not opened or looked into for the idle time, holds no change
// (engines and hives synced into an empty overlay), and the kernel holds
// no node that reaches its engines (its partitions, registry/, disk). The
// first idle pass asks the kernel to forget those nodes, which it does
// for nodes no process uses; a later pass closes the image. The next
// lookup opens it again.

func (n *imageNode) touch() {
	n.lastUse.Store(time.Now().UnixNano())
}

// recentUse is how long an image stays open whatever the cap: a scanner
// moving on from it may come back at once.
const recentUse = 2 * time.Second

// CloseIdle closes the images idle for at least idle and, while more than
// maxOpen images are open, the least recently used ones beyond the cap,
// and returns how many it closed. Only images that may be closed (see
// above) ever are.
func (t *Tree) CloseIdle(idle time.Duration, maxOpen int) int {
	t.mu.Lock()
	var open []*imageNode
	for _, n := range t.images {
		if im, _ := n.peek(); im != nil {
			open = append(open, n)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(open, func(a, b *imageNode) int { return cmp.Compare(a.lastUse.Load(), b.lastUse.Load()) })
	closed := 0
	for _, n := range open {
		unused := time.Since(time.Unix(0, n.lastUse.Load()))
		overCap := len(open)-closed > maxOpen && unused >= recentUse
		if unused < idle && !overCap {
			if len(open)-closed <= maxOpen {
				break // sorted: the rest were used more recently still
			}
			continue
		}
		if n.closeIfIdle(min(unused, idle)) {
			closed++
		}
	}
	return closed
}

func (n *imageNode) closeIfIdle(idle time.Duration) bool {
	held, closed := n.tryClose(idle)
	for _, name := range held {
		n.NotifyEntry(name) // outside n.mu: the kernel may look up again
	}
	return closed
}

// tryClose closes the image when it may; otherwise it returns the names
// of the children the kernel must forget first.
func (n *imageNode) tryClose(idle time.Duration) (held []string, closed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.im == nil || n.lookups.Load() > 0 || time.Since(time.Unix(0, n.lastUse.Load())) < idle || n.im.HoldsChanges() {
		return nil, false
	}
	for name, ch := range n.Children() {
		switch ch.Operations().(type) {
		case *infoNode, *fs.MemSymlink: // they reopen the image, or need none
		default:
			held = append(held, name)
		}
	}
	if len(held) > 0 {
		return held, false
	}
	if err := n.im.Close(); err != nil {
		slog.Warn("closing an idle image", "image", n.path, "err", err)
	}
	slog.Debug("closed an idle image", "image", n.path)
	n.im, n.err, n.done, n.vols, n.letters = nil, nil, false, map[int]*volCtx{}, nil
	return nil, true
}
