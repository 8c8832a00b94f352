package txn

import (
	"fmt"
	"os"
	"syscall"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// spaceSlack is room kept beyond what a commit computes it needs: block
// rounding of the journal and of the grown files, directory entries.
const spaceSlack = 1 << 20

// SpaceError says that a commit was not started because a file system
// lacks the room it needs. It matches syscall.ENOSPC with errors.Is. No
// byte of the image or of its sidecars was written: the commit can simply
// run again once the space is there.
type SpaceError struct {
	Image string
	Dir   string // where the space is needed
	What  string // what it is for
	Need  int64
	Free  int64
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("txn: commit to %s needs %s free in %s (%s), %s are free there; nothing was written",
		e.Image, humanize.IBytes(uint64(e.Need)), e.Dir, e.What, humanize.IBytes(uint64(max(e.Free, 0))))
}

func (e *SpaceError) Unwrap() error { return syscall.ENOSPC }

// freeSpace is the bytes an unprivileged writer may still use in dir; a
// variable so that tests can make a file system look full.
var freeSpace = func(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("txn: free space of %s: %w", dir, err)
	}
	avail := st.Bavail
	if os.Geteuid() == 0 {
		avail = st.Bfree // root may use the reserved blocks
	}
	return int64(avail) * int64(st.Bsize), nil
}

// checkSpace refuses, with a SpaceError, when dir has less than need free.
func checkSpace(image, dir, what string, need int64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if need+spaceSlack > free {
		return &SpaceError{Image: image, Dir: dir, What: what, Need: need + spaceSlack, Free: free}
	}
	return nil
}

// stagedNeed bounds what the durable part of a commit will take beside the
// image once staging is done: the undo journal (the old bytes of every run
// that may differ, plus framing) and the growth of every file.
func stagedNeed(s *stager) (journal, growth int64) {
	journal = headerSize + 2*recHeaderSize + comtSize + 4096
	for _, st := range s.order {
		if !st.changed() {
			continue
		}
		journal += recHeaderSize + 22 + int64(len(st.path))
		for _, iv := range candidates(st) {
			n := iv.end - iv.start
			// a region of L bytes costs L+40 and, but for the last one in a
			// chunk, is followed by diffGap (64) equal bytes: at most n,
			// plus the framing of one region per chunk
			journal += n + (n/maxChunk+2)*(recHeaderSize+undoFixed)
		}
		if st.realSize > st.size {
			journal += st.realSize - st.size // the cut tail's old bytes
		}
		growth += max(0, st.size-st.realSize)
	}
	return journal, growth
}
