package qcow2

import (
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// aroundBytes is the host window a read-only disk asks the kernel for
// around a small read: one aligned 64 KiB window (a default cluster) in
// one request instead of one request per 4 KiB page. Describing a Windows
// image reads a hive's cells page by page, scattered over a few clusters
// (about 40 pages in 10 windows); on a cold page cache every request
// costs the guest far more than the bytes it brings.
const aroundBytes = 64 << 10

// window remembers the last windows advised, so that each is asked for
// once (a miss only costs another posix_fadvise call).
type window struct {
	mu   sync.Mutex
	seen [64]int64 // window index + 1, direct-mapped; 0 = empty
}

// advise asks for the windows under n bytes at off that were not asked
// for yet, when f can be told (a host file).
func (w *window) advise(f vdisk.File, off, n int64) {
	a, ok := f.(vdisk.Adviser)
	if !ok || n <= 0 || n >= aroundBytes {
		return // big reads are one request already
	}
	for i := off / aroundBytes; i <= (off+n-1)/aroundBytes; i++ {
		slot := &w.seen[i%int64(len(w.seen))]
		w.mu.Lock()
		fresh := *slot != i+1
		*slot = i + 1
		w.mu.Unlock()
		if fresh {
			a.Advise(i*aroundBytes, aroundBytes)
		}
	}
}

// headBytes is the start of the host file a read-only disk asks for at
// open, in one request: qemu-img writes the header, the refcount table
// and block, the L1 table and the first L2 table there, followed by the
// guest's first clusters (its partition table, often a file system's
// first sectors). Opening an image reads these one after another, each
// read waiting for the one before; asked for together, the storage
// serves them at once.
const headBytes = 8 * aroundBytes

// adviseHead asks for the first headBytes of f (fewer when the file is
// smaller) and marks their windows as asked for.
func (w *window) adviseHead(f vdisk.File, fileSize int64) {
	a, ok := f.(vdisk.Adviser)
	if !ok || fileSize <= 0 {
		return
	}
	n := min(fileSize, headBytes)
	a.Advise(0, n)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := int64(0); i*aroundBytes < n; i++ {
		w.seen[i%int64(len(w.seen))] = i + 1
	}
}
