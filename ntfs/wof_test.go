package ntfs

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/compress"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// The decoders are proven on chunks written by wimlib: a WIM resource is
// laid out exactly as WofCompressedData (chunk table, then chunks, raw
// when they do not shrink), with the same algorithms and chunk sizes.

// wofSamples are the files captured: text, repetition, random and x86
// code (E8 calls), sized across chunk boundaries.
func wofSamples(t testing.TB) map[string][]byte {
	t.Helper()
	rnd := mrand.New(mrand.NewSource(7))
	text := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "line %d: the quick brown fox %d jumps over the lazy dog %x\n", i, rnd.Intn(1000), rnd.Intn(1<<20))
		}
		return b.Bytes()[:n]
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rnd.Read(b)
		return b
	}
	code := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.Write([]byte{0x55, 0x48, 0x89, 0xe5, 0xe8})
			binary.Write(&b, binary.LittleEndian, int32(rnd.Intn(4000)-2000))
			b.Write([]byte{0x48, 0x83, 0xc4, 0x08, 0x5d, 0xc3})
		}
		return b.Bytes()[:n]
	}
	s := map[string][]byte{
		"one-chunk":  text(3000),
		"exact-32k":  text(32768),
		"text-multi": text(100003),
		"repeat":     bytes.Repeat([]byte("abcabcabd"), 9000),
		"mixed-raw":  append(append(text(32768), random(70000)...), text(10001)...),
		"x86-calls":  code(70001),
		"zeros-tail": append(text(5000), make([]byte, 60000)...),
	}
	if exe, err := os.ReadFile("/bin/ls"); err == nil && len(exe) > 0 { // real x86 code
		s["bin-ls"] = exe[:min(len(exe), 200000)]
	}
	return s
}

type wimCase struct {
	name    string
	compArg string
	chunk   int
	format  uint32
}

var wimCases = []wimCase{
	{"XPRESS4K", "XPRESS", 4096, wofFormatXpress4},
	{"XPRESS8K", "XPRESS", 8192, wofFormatXpress8},
	{"XPRESS16K", "XPRESS", 16384, wofFormatXpr16},
	{"LZX", "LZX", 32768, wofFormatLZX},
}

// wimBlob is one file's compressed resource as wimlib stored it.
type wimBlob struct {
	size     int64  // plain size
	resource []byte // chunk table + chunks
}

// captureWIM has wimcapture compress dir and returns the compressed
// resources by SHA-1 of their plain content.
func captureWIM(t testing.TB, dir string, c wimCase) (map[[20]byte]wimBlob, string) {
	t.Helper()
	wim := filepath.Join(t.TempDir(), c.name+".wim")
	testutil.Run(t, "wimcapture", dir, wim, "--compress="+c.compArg, fmt.Sprintf("--chunk-size=%d", c.chunk), "--threads=1")
	testutil.Run(t, "wimverify", wim)
	b, err := os.ReadFile(wim)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if string(b[:8]) != "MSWIM\x00\x00\x00" || le.Uint32(b[20:]) != uint32(c.chunk) {
		t.Fatalf("%s: not a WIM with %d-byte chunks", wim, c.chunk)
	}
	tsize, _, toff, _ := wimReshdr(b[48:])
	out := map[[20]byte]wimBlob{}
	for e := b[toff : toff+tsize]; len(e) >= 50; e = e[50:] {
		size, flags, off, plain := wimReshdr(e)
		if flags&0x04 == 0 || flags&0x02 != 0 || flags&0x10 != 0 { // compressed file data only
			continue
		}
		var h [20]byte
		copy(h[:], e[30:50])
		out[h] = wimBlob{size: plain, resource: b[off : off+size]}
	}
	return out, wim
}

// wimReshdr decodes a resource header: 7-byte stored size, flags,
// offset, plain size.
func wimReshdr(b []byte) (size int64, flags byte, off, plain int64) {
	le := binary.LittleEndian
	return int64(le.Uint64(b) & (1<<56 - 1)), b[7], int64(le.Uint64(b[8:])), int64(le.Uint64(b[16:]))
}

func writeSamples(t testing.TB, s map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for n, b := range s {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestWIMChunksDecode decodes every chunk wimlib wrote, chunk by chunk
// with the WOF chunk table rules, and compares with the files captured.
func TestWIMChunksDecode(t *testing.T) {
	testutil.RequireTool(t, "wimcapture", "wimtools")
	samples := wofSamples(t)
	dir := writeSamples(t, samples)
	for _, c := range wimCases {
		t.Run(c.name, func(t *testing.T) {
			blobs, wim := captureWIM(t, dir, c)
			var compressed, raw int
			for name, want := range samples {
				bl, ok := blobs[sha1.Sum(want)]
				if !ok {
					t.Logf("%s: wimlib stored it uncompressed", name)
					continue
				}
				got, nc, nr, err := decodeResource(bl, c)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: decoded content differs (first at %d)", name, firstDiff(got, want))
				}
				compressed, raw = compressed+nc, raw+nr
			}
			t.Logf("%s: %d compressed and %d raw chunks decoded", c.name, compressed, raw)
			if compressed == 0 || raw == 0 {
				t.Errorf("want both compressed and raw chunks, got %d and %d", compressed, raw)
			}
			// wimlib's own extraction agrees with the files.
			ap := filepath.Join(t.TempDir(), "applied")
			testutil.Run(t, "wimapply", wim, "1", ap)
			for name, want := range samples {
				if got, err := os.ReadFile(filepath.Join(ap, name)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("wimapply %s differs: %v", name, err)
				}
			}
		})
	}
}

// decodeResource splits a resource by its chunk table and decodes each
// chunk independently.
func decodeResource(bl wimBlob, c wimCase) (out []byte, compressed, raw int, err error) {
	n := int((bl.size + int64(c.chunk) - 1) / int64(c.chunk))
	table := (n - 1) * 4
	r := bl.resource
	at := func(i int) int { // start of chunk i, past the table
		switch {
		case i == 0:
			return table
		case i == n:
			return len(r)
		}
		return table + int(binary.LittleEndian.Uint32(r[(i-1)*4:]))
	}
	for i := 0; i < n; i++ {
		stored := r[at(i):at(i+1)]
		plain := min(c.chunk, int(bl.size)-i*c.chunk)
		if len(stored) == plain {
			out = append(out, stored...)
			raw++
			continue
		}
		dst := make([]byte, plain)
		if c.format == wofFormatLZX {
			err = compress.LZX(stored, dst)
		} else {
			err = compress.XpressHuffman(stored, dst)
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("chunk %d of %d: %w", i, n, err)
		}
		out = append(out, dst...)
		compressed++
	}
	return out, compressed, raw, nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestWOFFilesOnNtfs3gVolume builds WOF files through ntfs-3g (the stream
// holds wimlib's compressed resource, the reparse point names the
// algorithm, the unnamed stream has the plain size) and reads them back
// through the engine.
func TestWOFFilesOnNtfs3gVolume(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "wimcapture", "wimtools")
	samples := wofSamples(t)
	dir := writeSamples(t, samples)
	img := mkntfsImage(t, t.TempDir(), 64, 4096)
	mnt, unmount := mount3g(t, img, "streams_interface=windows")
	made := 0
	for _, c := range wimCases {
		blobs, _ := captureWIM(t, dir, c)
		if err := os.Mkdir(filepath.Join(mnt, c.name), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, plain := range samples {
			bl, ok := blobs[sha1.Sum(plain)]
			if !ok {
				continue
			}
			makeWOF(t, filepath.Join(mnt, c.name, name), bl, c.format)
			made++
		}
	}
	// A WIMBoot file (WIM provider) keeps its data in an outside WIM.
	bl := wimBlob{size: 5000, resource: bytes.Repeat([]byte{1}, 100)}
	makeWOF(t, filepath.Join(mnt, "wimboot"), bl, wofFormatLZX)
	setProvider(t, filepath.Join(mnt, "wimboot"), 1)
	unmount()
	if made < 20 {
		t.Fatalf("only %d WOF files made", made)
	}

	// ntfsprogs sees the layout Windows makes: a WOF reparse point, a
	// sparse unnamed stream of the plain size, the named stream.
	if _, err := exec.LookPath("ntfsinfo"); err == nil {
		out, _ := exec.Command("ntfsinfo", "-F", "/LZX/text-multi", img).CombinedOutput()
		for _, want := range []string{"Wof compressed", "'WofCompressedData'", "SPARSE_FILE", "Data size:\t\t 100003 "} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ntfsinfo of /LZX/text-multi lacks %q:\n%s", want, out)
			}
		}
	}

	v := openVol(t, img, 0, Options{})
	rnd := mrand.New(mrand.NewSource(1))
	checked := 0
	wantAfter := map[string][]byte{}
	for _, c := range wimCases {
		d, err := v.Lookup(v.Root(), c.name)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range samples {
			a, err := v.Lookup(d.Ino, name)
			if err != nil {
				continue // stored uncompressed by wimlib: no WOF file made
			}
			where := c.name + "/" + name
			if a.Size != int64(len(want)) {
				t.Errorf("%s: size %d, want %d", where, a.Size, len(want))
			}
			names, err := v.ListXattr(a.Ino)
			if err != nil || strings.Contains(strings.Join(names, ","), wofStreamName) {
				t.Errorf("%s: xattrs %v, %v: the WOF stream should be hidden", where, names, err)
			}
			got := readAllIno(t, v, a.Ino, 6000)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs at %d (len %d, want %d)", where, firstDiff(got, want), len(got), len(want))
				continue
			}
			for i := 0; i < 50; i++ { // random windows, across chunks
				off := rnd.Int63n(int64(len(want)))
				p := make([]byte, rnd.Intn(70000)+1)
				n, err := v.ReadAt(a.Ino, p, off)
				if err != nil && err != io.EOF {
					t.Fatalf("%s: ReadAt %d+%d: %v", where, off, len(p), err)
				}
				if !bytes.Equal(p[:n], want[off:off+int64(n)]) || off+int64(n) != min(off+int64(len(p)), int64(len(want))) {
					t.Fatalf("%s: ReadAt %d+%d gave %d bytes that differ", where, off, len(p), n)
				}
			}
			// The first change makes the file plain, as Windows does.
			patched := append([]byte(nil), want...)
			switch checked % 3 {
			case 0: // overwrite the head
				copy(patched, "patched by offvm")
				if _, err := v.WriteAt(a.Ino, []byte("patched by offvm"), 0); err != nil {
					t.Errorf("%s: WriteAt: %v", where, err)
				}
			case 1: // append
				patched = append(patched, "appended by offvm"...)
				if _, err := v.WriteAt(a.Ino, []byte("appended by offvm"), int64(len(want))); err != nil {
					t.Errorf("%s: append: %v", where, err)
				}
			case 2: // truncate
				patched = patched[:len(patched)/2]
				if err := v.Truncate(a.Ino, int64(len(patched))); err != nil {
					t.Errorf("%s: Truncate: %v", where, err)
				}
			}
			if got := readAllIno(t, v, a.Ino, 6000); !bytes.Equal(got, patched) {
				t.Errorf("%s: after the change we read %d bytes that differ at %d", where, len(got), firstDiff(got, patched))
			}
			wantAfter["/"+where] = patched
			checked++
		}
	}
	if a, err := v.Lookup(v.Root(), "wimboot"); err != nil {
		t.Error(err)
	} else if _, err := v.ReadAt(a.Ino, make([]byte, 10), 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("WIMBoot file: %v, want EACCES", err)
	} else if _, err := v.WriteAt(a.Ino, []byte("x"), 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("WIMBoot file: WriteAt: %v, want EACCES", err)
	}
	t.Logf("%d WOF files read back and changed", checked)
	if checked != made {
		t.Errorf("checked %d of %d WOF files", checked, made)
	}
	checkWOFUnwrapped(t, img, wantAfter)
}

// checkWOFUnwrapped has ntfs-3g read the changed files as plain files
// and ntfsinfo show them without reparse point or WofCompressedData.
func checkWOFUnwrapped(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	checkConsistent(t, img)
	mnt, unmount := mount3g(t, img, "ro")
	for p, w := range want {
		got, err := os.ReadFile(filepath.Join(mnt, p))
		if err != nil || !bytes.Equal(got, w) {
			t.Errorf("ntfs-3g reads %s as %d bytes (%v), differing at %d", p, len(got), err, firstDiff(got, w))
		}
		if _, err := syscall.Getxattr(filepath.Join(mnt, p), "system.ntfs_reparse_data", make([]byte, 64)); err == nil {
			t.Errorf("ntfs-3g still sees a reparse point on %s", p)
		}
	}
	unmount()
	n := 0
	for p := range want {
		if n++; n > 6 {
			break
		}
		out, _ := exec.Command("ntfsinfo", "-F", p, img).CombinedOutput()
		for _, bad := range []string{"Wof compressed", wofStreamName, "$REPARSE_POINT"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("ntfsinfo -F %s still shows %q", p, bad)
			}
		}
	}
	removeAllWith3g(t, img)
}

// makeWOF turns path into a WOF file through ntfs-3g.
func makeWOF(t *testing.T, path string, bl wimBlob, format uint32) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, bl.size); err != nil { // plain size, a hole
		t.Fatal(err)
	}
	if err := os.WriteFile(path+":"+wofStreamName, bl.resource, 0o644); err != nil {
		t.Fatal(err)
	}
	rp := make([]byte, 24)
	le := binary.LittleEndian
	le.PutUint32(rp, tagWOF)
	le.PutUint16(rp[4:], 16)
	le.PutUint32(rp[8:], wofVersion)
	le.PutUint32(rp[12:], wofProviderFile)
	le.PutUint32(rp[16:], wofFileVersion)
	le.PutUint32(rp[20:], format)
	if err := syscall.Setxattr(path, "system.ntfs_reparse_data", rp, 0); err != nil {
		t.Fatalf("set WOF reparse point on %s: %v", path, err)
	}
}

// setProvider rewrites the WOF provider of path's reparse point.
func setProvider(t *testing.T, path string, provider uint32) {
	t.Helper()
	rp := make([]byte, 24)
	if _, err := syscall.Getxattr(path, "system.ntfs_reparse_data", rp); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(rp[12:], provider)
	if err := syscall.Setxattr(path, "system.ntfs_reparse_data", rp, 0); err != nil {
		t.Fatal(err)
	}
}

// readAllIno reads a whole file in pieces of step bytes.
func readAllIno(t *testing.T, v *Volume, ino volume.Ino, step int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, step)
	for off := int64(0); ; {
		n, err := v.ReadAt(ino, buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("ReadAt %d at %d: %v", ino, off, err)
		}
	}
}

// BenchmarkWOFDecode decodes wimlib's chunks of the sample files.
func BenchmarkWOFDecode(b *testing.B) {
	testutil.RequireTool(b, "wimcapture", "wimtools")
	for _, c := range wimCases {
		b.Run(c.name, func(b *testing.B) {
			samples := wofSamples(b)
			blobs, _ := captureWIM(b, writeSamples(b, samples), c)
			var total int64
			for _, bl := range blobs {
				total += bl.size
			}
			b.SetBytes(total)
			for b.Loop() {
				for _, bl := range blobs {
					if _, _, _, err := decodeResource(bl, c); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestWOFLargeFile covers a file of 4 GiB and more, whose chunk table
// has 8-byte entries: every chunk is wimlib's LZX chunk of 32 KiB of
// zeros, the last (100 bytes) is stored raw.
func TestWOFLargeFile(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "wimcapture", "wimtools")
	zeros := make([]byte, 65536)
	dir := writeSamples(t, map[string][]byte{"z": zeros})
	c := wimCases[3]
	blobs, _ := captureWIM(t, dir, c)
	bl, ok := blobs[sha1.Sum(zeros)]
	if !ok {
		t.Fatal("wimlib did not compress 64 KiB of zeros")
	}
	chunk := bl.resource[4 : 4+binary.LittleEndian.Uint32(bl.resource)] // the first of two
	const size = 4<<30 + 100
	n := int64(size+c.chunk-1) / int64(c.chunk)
	var stream bytes.Buffer
	for i := int64(1); i < n; i++ {
		binary.Write(&stream, binary.LittleEndian, uint64(i*int64(len(chunk))))
	}
	for i := int64(0); i < n-1; i++ {
		stream.Write(chunk)
	}
	stream.Write(make([]byte, 100))

	img := mkntfsImage(t, t.TempDir(), 64, 4096)
	mnt, unmount := mount3g(t, img, "streams_interface=windows")
	makeWOF(t, filepath.Join(mnt, "big"), wimBlob{size: size, resource: stream.Bytes()}, c.format)
	unmount()

	v := openVol(t, img, 0, Options{ReadOnly: true})
	a, err := v.Lookup(v.Root(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != size {
		t.Fatalf("size %d, want %d", a.Size, int64(size))
	}
	for _, off := range []int64{0, 32760, 1 << 31, 4<<30 - 10, size - 150, size - 1} {
		p := bytes.Repeat([]byte{0xff}, 200)
		got, err := v.ReadAt(a.Ino, p, off)
		want := min(200, size-off)
		if (err != nil && err != io.EOF) || int64(got) != want || !bytes.Equal(p[:got], make([]byte, got)) {
			t.Errorf("ReadAt %d: %d bytes, %v (want %d zero bytes)", off, got, err, want)
		}
	}
}
