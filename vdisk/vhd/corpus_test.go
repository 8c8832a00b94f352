package vhd

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestCorpusQemuImages reads the qemu-made VHDs of the corpus in full and
// compares them with what qemu-img converts them to.
func TestCorpusQemuImages(t *testing.T) {
	requireQemu(t)
	for _, rel := range []string{"dfvfs/ext2.vhd", "plaso/image.vhd"} {
		t.Run(rel, func(t *testing.T) {
			path := testutil.Corpus(t, rel)
			want := filepath.Join(t.TempDir(), "qemu.raw")
			testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", path, want)
			d := openPath(t, path, false)
			if v := d.Info().Variant; v != "dynamic" {
				t.Fatalf("variant %q", v)
			}
			assertSame(t, d, want)
		})
	}
}

// The parent fat-differential.vhd was made from, as its header names it.
const fatParentWin = `C:\Projects\dfvfs\test_data\fat-parent.vhd`

// TestCorpusDifferentialNoParent: Windows' differencing image without its
// parent is refused, naming the parent it wanted.
func TestCorpusDifferentialNoParent(t *testing.T) {
	path := testutil.Corpus(t, "dfvfs/fat-differential.vhd")
	if f, err := vdisk.OpenOSFile(path, false); err != nil {
		t.Fatal(err)
	} else if !Match(f) {
		t.Fatal("Match says no")
	} else {
		_, err := Open(f, vdisk.Options{})
		mustErr(t, err, vdisk.ErrParentNotFound, path, fatParentWin)
		f.Close()
	}
	_, err := openWith(path, false)
	mustErr(t, err, vdisk.ErrParentNotFound, path, fatParentWin)
}

// TestCorpusDifferentialFakeParent gives fat-differential.vhd stand-in
// parents (raw files of the right size) beside it, found through the W2ru
// locator (.\fat-parent.vhd). Oracle: qemu-img reads a differencing VHD
// as if it had no parent, giving each allocated block whole; Windows left
// zeros in the sectors it did not write. So with a parent of zeros the
// chain must equal qemu's reading. With a random parent, every sector must
// be either the child's (each sector qemu shows non-zero among them) or
// the parent's, and some must be the parent's.
//
// libvhdi is no oracle here: version 20210425 takes every bit after the
// first set one in a bitmap byte as set, and this image has bytes such as
// 0xcb.
func TestCorpusDifferentialFakeParent(t *testing.T) {
	requireQemu(t)
	src := testutil.Corpus(t, "dfvfs/fat-differential.vhd")
	dir := t.TempDir()
	child := filepath.Join(dir, "fat-differential.vhd")
	testutil.CopyFile(t, src, child)
	parent := filepath.Join(dir, "fat-parent.vhd")
	qemuChild := filepath.Join(dir, "qemu.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", child, qemuChild)
	qc, err := os.ReadFile(qemuChild)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(parent, make([]byte, 4*MiB), 0o644); err != nil {
		t.Fatal(err)
	}
	d := openPath(t, child, false)
	if info := d.Info(); info.Parent != parent || info.Variant != "differencing" {
		t.Fatalf("Info = %+v", info)
	}
	locs := readLocators(d.f, mustSize(t, child), &d.hdr)
	var got []string
	for _, l := range locs {
		got = append(got, l.code+"="+l.path)
	}
	if g := strings.Join(got, " "); g != `W2ru=.\fat-parent.vhd W2ku=`+fatParentWin {
		t.Fatalf("locators: %s", g)
	}
	assertSame(t, d, qemuChild)
	d.Close()

	fillRandom(t, parent)
	pr, _ := os.ReadFile(parent)
	d = openPath(t, child, false)
	all := make([]byte, d.Size())
	if _, err := d.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	fromParent := 0
	for s := 0; s < len(all); s += 512 {
		g, c, p := all[s:s+512], qc[s:s+512], pr[s:s+512]
		switch {
		case bytes.Equal(g, c) && !bytes.Equal(g, p):
		case bytes.Equal(g, p) && !isZero(c):
			t.Fatalf("sector %d: the parent's, but the child holds data there", s/512)
		case bytes.Equal(g, p):
			fromParent++
		default:
			t.Fatalf("sector %d is neither the child's nor the parent's", s/512)
		}
	}
	if fromParent == 0 {
		t.Fatal("no sector came from the parent")
	}
	t.Logf("%d of %d sectors from the parent", fromParent, len(all)/512)
}

func isZero(b []byte) bool { return vdisk.IsZero(b) }

// fillRandom overwrites a whole file with random bytes.
func fillRandom(t *testing.T, path string) {
	t.Helper()
	b := make([]byte, mustSize(t, path))
	r := rand.New(rand.NewPCG(42, 42))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestCorpusDifferentialWrite writes into a copy of Windows' differencing
// image (into its allocated block, whose bitmap is sparse, and into the
// unallocated one) over a parent of zeros. qemu-img, reading the child
// alone, must see its old content with the writes laid over it.
func TestCorpusDifferentialWrite(t *testing.T) {
	requireQemu(t)
	src := testutil.Corpus(t, "dfvfs/fat-differential.vhd")
	dir := t.TempDir()
	child := filepath.Join(dir, "fat-differential.vhd")
	testutil.CopyFile(t, src, child)
	if err := os.WriteFile(filepath.Join(dir, "fat-parent.vhd"), make([]byte, 4*MiB), 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "want.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", child, want)
	d := openPath(t, child, true)
	applyPattern(t, d, want, []write{
		{off: 135*512 + 10, n: 100}, // a clear bit among set ones
		{off: 186 * 512, n: 1024},
		{off: 2*MiB - 300, n: 600}, // across into the unallocated block
		{off: 4*MiB - 4096, n: 4096},
	}, 12)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	assertFooters(t, child)
	got := filepath.Join(dir, "got.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", child, got)
	testutil.Run(t, "cmp", got, want)
	assertSame(t, openPath(t, child, false), want)
}
