package vhdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// A VHDX keeps its structures megabytes apart, so fuzz inputs are
// patches over a zeroed file: a flags byte, then records of
// [offset u32][length u16][bytes]. Flag bit 0 has the harness fix the
// header, region table and log entry checksums after patching, so that
// mutations reach the metadata, the BAT and the log's logic.

// fuzzFileSize bounds the patched file; it is only as long as its last
// record needs, so small inputs stay cheap.
const fuzzFileSize = 12 * mib

func fuzzImage(in []byte) []byte {
	if len(in) == 0 {
		return nil
	}
	flags, in := in[0], in[1:]
	size := 0
	for r := in; len(r) >= 6; {
		off, n := int(binary.LittleEndian.Uint32(r)), int(binary.LittleEndian.Uint16(r[4:]))
		n = min(n, len(r)-6)
		size = max(size, min(off+n, fuzzFileSize))
		r = r[6+n:]
	}
	img := make([]byte, size)
	for len(in) >= 6 {
		off, n := int(binary.LittleEndian.Uint32(in)), int(binary.LittleEndian.Uint16(in[4:]))
		in = in[6:]
		n = min(n, len(in))
		if off < len(img) {
			copy(img[off:], in[:n])
		}
		in = in[n:]
	}
	if flags&1 != 0 && len(img) >= regionOffset2+regionTableSize {
		fixChecksums(img)
	}
	return img
}

func fixChecksums(img []byte) {
	for _, off := range []int{headerOffset1, headerOffset2} {
		setChecksum(img[off : off+headerSize])
	}
	for _, off := range []int{regionOffset1, regionOffset2} {
		setChecksum(img[off : off+regionTableSize])
	}
	var h header
	_ = binary.Read(bytes.NewReader(img[headerOffset1:]), binary.LittleEndian, &h)
	lo, l := int64(h.LogOffset), int64(h.LogLength)
	if lo <= 0 || l <= 0 || lo+l > int64(len(img)) || l%logSector != 0 {
		return
	}
	for at := lo; at < lo+l; at += logSector {
		if string(img[at:at+4]) != "loge" {
			continue
		}
		n := int64(binary.LittleEndian.Uint32(img[at+8:]))
		if n > 0 && n%logSector == 0 && at+n <= lo+l {
			setChecksum(img[at : at+n])
		}
	}
}

// fakeParent is a parent of zeros-and-pattern that claims whatever
// DataWriteGuid the child asks for, so fuzzing reaches the differencing
// read and write paths.
type fakeParent struct {
	size int64
	guid GUID
}

func (p fakeParent) ReadAt(b []byte, off int64) (int, error) {
	for i := range b {
		b[i] = byte(off + int64(i))
	}
	return len(b), nil
}
func (p fakeParent) WriteAt([]byte, int64) (int, error) { return 0, vdisk.ErrReadOnly }
func (p fakeParent) Size() int64                        { return p.size }
func (p fakeParent) Info() vdisk.Info                   { return vdisk.Info{Format: "vhdx"} }
func (p fakeParent) Flush() error                       { return nil }
func (p fakeParent) Close() error                       { return nil }
func (p fakeParent) DataWriteGUID() [16]byte            { return p.guid }

// cappedFile refuses to grow past limit, as a full disk would, so that a
// fuzzed log or block size cannot make the harness allocate gigabytes.
type cappedFile struct {
	*vdisk.MemFile
	limit int64
}

// memPool keeps fuzz files between runs: fresh megabytes from the OS
// cost more than the code under test.
var memPool = map[string][]*vdisk.MemFile{}

// newCappedFile gives a file holding img, reusing a pooled one.
func newCappedFile(name string, img []byte) cappedFile {
	var m *vdisk.MemFile
	if l := memPool[name]; len(l) > 0 {
		m, memPool[name] = l[len(l)-1], l[:len(l)-1]
		m.Truncate(0)
	} else {
		m = vdisk.NewMemFile(name, nil)
	}
	m.WriteAt(img, 0)
	return cappedFile{m, 3 * fuzzFileSize}
}

// release returns a file to the pool (fuzz targets run one at a time
// per process).
func (c cappedFile) release() {
	memPool[c.Name()] = append(memPool[c.Name()], c.MemFile)
}

func (c cappedFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.limit {
		return 0, fmt.Errorf("fuzz: file limit %d reached", c.limit)
	}
	return c.MemFile.WriteAt(p, off)
}

func (c cappedFile) Truncate(n int64) error {
	if n > c.limit {
		return fmt.Errorf("fuzz: file limit %d reached", c.limit)
	}
	return c.MemFile.Truncate(n)
}

func fuzzOptions(f vdisk.File, writable bool) vdisk.Options {
	return vdisk.Options{Writable: writable, OpenParent: func(string) (vdisk.Disk, error) {
		p := fakeParent{size: 8 * mib}
		if _, bat, err := readRegions(f, fuzzFileSize); err == nil {
			if m, err := readMetadata(f, bat); err == nil {
				p.guid, _ = parseGUID(m.parentLocator["parent_linkage"])
				p.size = m.virtualSize
			}
		}
		return p, nil
	}}
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "parent.vhdx"), nil, 0o644); err != nil {
		f.Fatal(err)
	}
	name := filepath.Join(dir, "child.vhdx")
	f.Fuzz(func(t *testing.T, in []byte) {
		img := fuzzImage(in)
		defer testutil.Watchdog("opening a fuzzed image", testutil.FuzzStallLimit)()
		for _, writable := range []bool{false, true} {
			mf := newCappedFile(name, img)
			d, err := Open(mf, fuzzOptions(mf, writable))
			if err == nil {
				exercise(t, d, writable)
				d.Close()
			}
			mf.release()
		}
	})
}

// exercise reads and writes a few places; it must never panic.
func exercise(t *testing.T, d vdisk.Disk, writable bool) {
	size := d.Size()
	buf := make([]byte, 70000)
	places := []int64{0, size / 2, size - 1, size - int64(len(buf)), mib - 300}
	for _, off := range places {
		if off >= 0 {
			d.ReadAt(buf, off)
		}
	}
	if !writable {
		return
	}
	for i, off := range places {
		if off >= 0 && off+513 <= size {
			d.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 513), off)
			d.ReadAt(buf[:1000], max(0, off-200))
		}
	}
}

// FuzzLog feeds a log ring straight to the active sequence search and
// the entry parser.
func FuzzLog(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, fix bool) {
		if len(in) < 32 {
			return
		}
		var g GUID
		copy(g[:], in[:16])
		ring := make([]byte, (len(in)-16+logSector-1)/logSector*logSector)
		copy(ring, in[16:])
		if fix {
			for at := 0; at < len(ring); at += logSector {
				n := int(binary.LittleEndian.Uint32(ring[at+8:]))
				if string(ring[at:at+4]) == "loge" && n > 0 && n%logSector == 0 && at+n <= len(ring) {
					setChecksum(ring[at : at+n])
				}
			}
		}
		seq := findActiveSequence(ring, g, 8*mib)
		for _, e := range seq {
			if e.length <= 0 || e.length > int64(len(ring)) {
				t.Fatalf("entry at %d has length %d", e.at, e.length)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates the seed inputs from qemu-made images
// (VHDX_WRITE_SEEDS=1); they are committed under testdata/fuzz in go's
// corpus format.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VHDX_WRITE_SEEDS") == "" {
		t.Skip("set VHDX_WRITE_SEEDS=1 to regenerate testdata/seeds")
	}
	dir := t.TempDir()
	writeSeed := func(target, name string, vals ...string) {
		d := filepath.Join("testdata/fuzz", target)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "go test fuzz v1\n" + strings.Join(vals, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save := func(name, img string) {
		b := fileBytes(t, img)
		out := []byte{1}
		// Structures only (qemu keeps them below 4 MiB); the end marker
		// below keeps the file as long, so allocated blocks stay valid.
		for off := 0; off < min(len(b), 4*mib); off += 4096 {
			page := bytes.TrimRight(b[off:off+4096], "\x00")
			if len(page) == 0 {
				continue
			}
			out = binary.LittleEndian.AppendUint32(out, uint32(off))
			out = binary.LittleEndian.AppendUint16(out, uint16(len(page)))
			out = append(out, page...)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(min(len(b), fuzzFileSize)-1))
		out = append(out, 1, 0, 0)
		writeSeed("FuzzOpen", name, "[]byte("+strconv.Quote(string(out))+")")
	}
	for i, opts := range []string{"subformat=dynamic,block_size=1M", "subformat=fixed,block_size=1M"} {
		img := join(dir, fmt.Sprint(i, ".vhdx"))
		qemuImg(t, "create", "-f", "vhdx", "-o", opts, img, "2M")
		d := openPath(t, img, true, vdisk.Options{})
		d.WriteAt([]byte("seed data"), 4096)
		d.Close()
		save(fmt.Sprintf("qemu-%d", i), img)
	}
	// A differencing child, and a pending log from qemu-io.
	parent, child := join(dir, "parent.vhdx"), join(dir, "child.vhdx")
	qemuImg(t, "create", "-f", "vhdx", "-o", "block_size=1M", parent, "2M")
	makeChild(t, parent, child, false)
	d := openPath(t, child, true, parentOpener())
	d.WriteAt([]byte("partial"), 1000)
	d.Close()
	save("differencing", child)

	crash, _ := crashImage(t, dir)
	save("crash-log", crash)
	b := fileBytes(t, crash)
	h, _, _ := readHeaders(vdisk.NewMemFile(crash, b))
	ring := b[h.LogOffset : h.LogOffset+16*kib]
	writeSeed("FuzzLog", "qemu", "[]byte("+strconv.Quote(string(append(h.LogGUID[:], ring...)))+")", "bool(true)")
}

// TestFuzzSeedsOpen makes sure the committed seeds reach past the
// headers: each opens, reads and takes writes.
func TestFuzzSeedsOpen(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzOpen/*")
	if len(seeds) == 0 {
		t.Fatal("no seeds in testdata/fuzz/FuzzOpen")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "parent.vhdx"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		text := strings.SplitN(string(fileBytes(t, s)), "\n", 3)
		q := strings.TrimSuffix(strings.TrimPrefix(text[1], "[]byte("), ")")
		in, err := strconv.Unquote(q)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		mf := newCappedFile(filepath.Join(dir, "child.vhdx"), fuzzImage([]byte(in)))
		d, err := Open(mf, fuzzOptions(mf, true))
		if err != nil {
			t.Errorf("seed %s does not open: %v", filepath.Base(s), err)
			continue
		}
		exercise(t, d, true)
		d.Close()
	}
}
