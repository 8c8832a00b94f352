package qcow2

import (
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// readLog records the host reads made through it, and the windows the
// disk asked the kernel for.
type readLog struct {
	vdisk.File
	mu      sync.Mutex
	reads   [][2]int64 // offset, length
	advised [][2]int64
}

func (r *readLog) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, int64(len(p))})
	r.mu.Unlock()
	return r.File.ReadAt(p, off)
}

func (r *readLog) Advise(off, n int64) {
	r.mu.Lock()
	r.advised = append(r.advised, [2]int64{off, n})
	r.mu.Unlock()
	r.File.(vdisk.Adviser).Advise(off, n)
}

// openLogged opens img read-only through a readLog.
func openLogged(t *testing.T, img string) (*Disk, *readLog) {
	t.Helper()
	f, err := vdisk.OpenOSFile(img, false)
	if err != nil {
		t.Fatal(err)
	}
	log := &readLog{File: f}
	d, err := Open(log, vdisk.Options{OpenParent: openChain})
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.(*Disk), log
}

// TestReadOnlySlices: a disk opened read-only reads its L2 tables a page
// at a time and its header extensions a page at a time, and reads every
// byte as qemu-img wrote it, whatever the cluster size, with the slice
// cache evicting (tiny) or not.
func TestReadOnlySlices(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	cases := []struct {
		name string
		opts string
		cs   int64
		tiny bool
	}{
		{"v3-64k", "compat=1.1,cluster_size=65536", 65536, false},
		{"v3-64k-tiny", "compat=1.1,cluster_size=65536", 65536, true},
		{"v2-4k", "compat=0.10,cluster_size=4096", 4096, false},
		{"v3-512-tiny", "compat=1.1,cluster_size=512", 512, true},
		{"v3-2m", "compat=1.1,cluster_size=2097152", 2 << 20, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := makeRaw(t, dir, 32<<20, int64(i))
			img := filepath.Join(dir, "d.qcow2")
			testutil.Run(t, "qemu-img", "convert", "-O", "qcow2", "-o", c.opts, src, img)
			d, log := openLogged(t, img)
			if c.tiny {
				d.l2s.max = 2
			}
			for _, r := range log.reads {
				if r[0] < c.cs && r[1] > extChunk {
					t.Errorf("header read of %d bytes at %d, want at most %d", r[1], r[0], extChunk)
				}
			}
			compareAll(t, d, src)
			slice := min(int64(l2SliceBytes), c.cs)
			for l1i := int64(0); l1i < int64(len(d.l1.raw)/8); l1i++ {
				l2 := int64(d.l1.u64(l1i) & offsetMask)
				for _, r := range log.reads {
					if l2 != 0 && r[0] >= l2 && r[0] < l2+c.cs && r[1] != slice {
						t.Errorf("L2 table at %#x: read of %d bytes at %#x, want slices of %d", l2, r[1], r[0], slice)
					}
				}
			}
			if len(d.l2.m) != 0 {
				t.Errorf("%d whole L2 tables cached by a read-only disk", len(d.l2.m))
			}
		})
	}
}

// TestReadOnlyAdvice: a read-only disk asks the kernel for the head of
// its file at open (from the L1 table on: tables, the guest's first
// clusters, in one request); small reads ask for their aligned 64 KiB window once (one
// request for the pages around), none inside the head; a read of a
// window or more asks nothing; a writable disk asks nothing.
func TestReadOnlyAdvice(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := filepath.Join(dir, "full.raw") // every cluster allocated
	data := make([]byte, 8<<20)
	rand.New(rand.NewSource(3)).Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "d.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-O", "qcow2", src, img)
	d, log := openLogged(t, img)
	head := int64(d.h.L1TableOffset) / aroundBytes * aroundBytes
	if len(log.advised) != 1 || log.advised[0] != [2]int64{head, headBytes} {
		t.Fatalf("advised %v at open, want the head [%#x %d] (the L1 table's window on)", log.advised, head, headBytes)
	}
	compareAll(t, d, src) // every byte as qemu-img wrote it
	log.advised = log.advised[:1]
	buf := make([]byte, 4096)
	for i := 0; i < 3; i++ { // the same pages again: no new advice
		for _, off := range []int64{0, 1 << 20, 1<<20 + 8192, 3 << 20} {
			if _, err := d.ReadAt(buf, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := len(log.advised)
	if _, err := d.ReadAt(make([]byte, 1<<20), 5<<20); err != nil {
		t.Fatal(err)
	}
	if len(log.advised) != n {
		t.Errorf("a 1 MiB read asked for %v", log.advised[n:])
	}
	seen := map[int64]bool{}
	for _, a := range log.advised[1:] {
		if a[0]%aroundBytes != 0 || a[1] != aroundBytes {
			t.Errorf("advised %d bytes at %#x, want aligned windows of %d", a[1], a[0], aroundBytes)
		}
		if a[0] >= head && a[0] < head+headBytes {
			t.Errorf("window %#x inside the head advised again", a[0])
		}
		if seen[a[0]] {
			t.Errorf("window %#x advised twice", a[0])
		}
		seen[a[0]] = true
	}
	// the two data windows past the head at least (guest 1 MiB and
	// 3 MiB lie past the head's 512 KiB of the host file)
	if len(seen) < 2 {
		t.Errorf("advised %v, want the windows of the data read", log.advised)
	}

	f, err := vdisk.OpenOSFile(img, true)
	if err != nil {
		t.Fatal(err)
	}
	wlog := &readLog{File: f}
	w, err := Open(wlog, vdisk.Options{Writable: true, OpenParent: openChain})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ReadAt(buf, 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(wlog.advised) != 0 {
		t.Errorf("a writable disk asked for %v", wlog.advised)
	}
}

// TestLongHeaderExtension: an extension longer than the first read of the
// extension area (an unknown one of 6,000 bytes, which qemu skips) comes
// before the backing format: the area is read on, and qemu-img and this
// package agree on the backing file and its format.
func TestLongHeaderExtension(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "child.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1", "-b", "base.raw", "-F", "raw", img, "1M")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.BigEndian.Uint32(raw[100:]))
	name := "base.raw"
	var hdr []byte
	hdr = append(hdr, raw[:hlen]...)
	ext := func(typ uint32, data []byte) {
		hdr = binary.BigEndian.AppendUint32(hdr, typ)
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(data)))
		hdr = append(hdr, data...)
		for len(hdr)%8 != 0 {
			hdr = append(hdr, 0)
		}
	}
	ext(0x0badf00d, make([]byte, 6000)) // unknown: skipped by qemu and by us
	ext(extBackingFmt, []byte("raw"))
	ext(extEnd, nil)
	binary.BigEndian.PutUint64(hdr[8:], uint64(len(hdr))) // backing_file_offset
	binary.BigEndian.PutUint32(hdr[16:], uint32(len(name)))
	hdr = append(hdr, name...)
	if len(hdr) > 65536 {
		t.Fatal("header longer than the cluster")
	}
	copy(raw, hdr)
	clear(raw[len(hdr):65536])
	if err := os.WriteFile(img, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", img).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	var info struct {
		Backing string `json:"backing-filename"`
		Format  string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Backing != name || info.Format != "raw" {
		t.Fatalf("qemu-img info: backing %q format %q: the crafted header is not what qemu reads", info.Backing, info.Format)
	}
	d, log := openLogged(t, img)
	if d.h.backingFormat != "raw" || d.h.backingFile != name {
		t.Errorf("backing %q format %q, qemu-img says %q %q", d.h.backingFile, d.h.backingFormat, info.Backing, info.Format)
	}
	var area int64
	for _, r := range log.reads {
		if r[0] == int64(hlen) {
			area = max(area, r[1])
		}
	}
	if area < 6000 || area > 4*extChunk {
		t.Errorf("extension area read up to %d bytes, want past the 6,000-byte extension and no more than %d", area, 4*extChunk)
	}
}
