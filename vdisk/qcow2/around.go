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

// headBytes is how much of the host file a read-only disk asks for at
// open, in one request, from its L1 table on: qemu-img writes the header,
// the refcount table and block (which reads never need), then the L1
// table, the first L2 table and the guest's first clusters (its partition
// table, often a file system's first sectors). Opening an image reads
// these one after another, each read waiting for the one before; asked
// for together, the storage serves them at once.
const headBytes = 8 * aroundBytes

// adviseHead asks for headBytes of f from the window holding the L1
// table at l1 (fewer at the end of the file) and marks their windows as
// asked for.
func (w *window) adviseHead(f vdisk.File, l1, fileSize int64) {
	a, ok := f.(vdisk.Adviser)
	from := l1 / aroundBytes * aroundBytes
	if !ok || from < 0 || from >= fileSize {
		return
	}
	n := min(fileSize-from, headBytes)
	a.Advise(from, n)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := from / aroundBytes; i*aroundBytes < from+n; i++ {
		w.seen[i%int64(len(w.seen))] = i + 1
	}
}
