package ntfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/fswork"
	"github.com/offvm/offvm/volume"
)

// cowDev keeps writes in 4 KiB blocks over a base it never writes, as
// the transaction overlay does; extents are the blocks it holds.
type cowDev struct {
	mu     sync.RWMutex
	base   *memDev
	blocks map[int64][]byte
}

const cowBlock = 4096

func (d *cowDev) Size() int64 { return d.base.Size() }

func (d *cowDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for n := 0; n < len(p); {
		i, in := (off+int64(n))/cowBlock, (off+int64(n))%cowBlock
		k := min(len(p)-n, int(cowBlock-in))
		if b, ok := d.blocks[i]; ok {
			copy(p[n:n+k], b[in:])
		} else {
			copy(p[n:n+k], d.base.b[off+int64(n):])
		}
		n += k
	}
	return len(p), nil
}

func (d *cowDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n := 0; n < len(p); {
		i, in := (off+int64(n))/cowBlock, (off+int64(n))%cowBlock
		k := min(len(p)-n, int(cowBlock-in))
		b, ok := d.blocks[i]
		if !ok {
			b = slices.Clone(d.base.b[i*cowBlock : min((i+1)*cowBlock, int64(len(d.base.b)))])
			d.blocks[i] = b
		}
		copy(b[in:], p[n:n+k])
		n += k
	}
	return len(p), nil
}

func (d *cowDev) extents() []volume.Extent {
	var idx []int64
	for i := range d.blocks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var out []volume.Extent
	for _, i := range idx {
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == i*cowBlock {
			out[k].Len += cowBlock
			continue
		}
		out = append(out, volume.Extent{Off: i * cowBlock, Len: cowBlock})
	}
	return out
}

// apply makes the changes the base's.
func (d *cowDev) apply() {
	for i, b := range d.blocks {
		copy(d.base.b[i*cowBlock:], b)
	}
	d.blocks = map[int64][]byte{}
}

// seedVolume is an mkntfs volume in memory holding a directory with an
// INDX tree of several levels, nested directories whose records lie far
// apart, and a file with 8 hard links with 200-character names (its
// $FILE_NAMEs spill into extension records).
func seedVolume(t *testing.T, cluster int) *memDev {
	t.Helper()
	if _, err := exec.LookPath("mkntfs"); err != nil {
		t.Skip("mkntfs not installed (scripts/deps.sh installs it)")
	}
	img := filepath.Join(t.TempDir(), "ntfs.img")
	if err := os.WriteFile(img, make([]byte, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkntfs", "-F", "-Q", "-q", "-c", fmt.Sprint(cluster), img).CombinedOutput(); err != nil {
		t.Fatalf("mkntfs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	dev := &memDev{b}
	v, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big, err := v.Mkdir(v.Root(), "big", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	nest := v.Root()
	for i := range 600 {
		if _, err := v.Create(big.Ino, fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", i%40)), 0o644); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			a, err := v.Mkdir(nest, fmt.Sprintf("level%d", i/100), 0o755)
			if err != nil {
				t.Fatal(err)
			}
			nest = a.Ino
		}
	}
	f, err := v.Create(nest, "linked", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := v.Link(f.Ino, big.Ino, fmt.Sprintf("link%d-%s", i, strings.Repeat("L", 200))); err != nil {
			t.Fatal(err)
		}
	}
	return dev
}

// rawRecord is record n's bytes as they are on the device, nil past
// the end of $MFT.
func rawRecord(v *Volume, n uint64) []byte {
	rs := int64(v.geo.recordSize)
	if int64(n) >= v.mftSize/rs {
		return nil
	}
	buf := make([]byte, rs)
	if err := v.readRuns(v.mftRuns, buf, int64(n)*rs); err != nil {
		return nil
	}
	return buf
}

// indexBlocks is a directory's INDX blocks as they are on the device,
// by VCN; nil when it has none or is not a directory in use.
func indexBlocks(v *Volume, n uint64) map[int64][]byte {
	in, err := v.loadInode(n)
	if err != nil || !in.isDir() {
		return nil
	}
	di, err := v.openIndex(in)
	if err != nil || di.alloc == nil || di.alloc.resident {
		return nil
	}
	out := map[int64][]byte{}
	step := v.vcnBytes(di.blockSize)
	for off := int64(0); off+int64(di.blockSize) <= di.alloc.dataSize; off += int64(di.blockSize) {
		b := make([]byte, di.blockSize)
		if v.readRuns(di.alloc.runs, b, off) == nil {
			out[off/step] = b
		}
	}
	return out
}

// hasEntries reports whether an INDX block lists a name.
func hasEntries(b []byte) bool {
	if b == nil || string(b[:4]) != "INDX" {
		return false
	}
	blk := slices.Clone(b)
	if applyFixup(blk, "INDX") != nil {
		return false
	}
	node, err := parseIndexNode(blk[0x18:], 0)
	return err == nil && len(node.entries) > 1
}

// outsideMFT is exts without the bytes of either side's $MFT runs.
func outsideMFT(exts []volume.Extent, vs ...*Volume) []volume.Extent {
	out := slices.Clone(exts)
	for _, v := range vs {
		cs := v.geo.clusterSize
		for _, r := range v.mftRuns {
			lo, hi := r.lcn*cs, (r.lcn+r.length)*cs
			var next []volume.Extent
			for _, e := range out {
				if e.Off+e.Len <= lo || e.Off >= hi {
					next = append(next, e)
					continue
				}
				if e.Off < lo {
					next = append(next, volume.Extent{Off: e.Off, Len: lo - e.Off})
				}
				if e.Off+e.Len > hi {
					next = append(next, volume.Extent{Off: hi, Len: e.Off + e.Len - hi})
				}
			}
			out = next
		}
	}
	return out
}

// TestTouchedCoversChangedBytes checks volume.ChangeFinder against the
// bytes themselves, commit after commit of random workloads: every MFT
// record whose bytes differ is touched, with its base record when it is
// an extension record; every directory whose listing differs is touched;
// and from the changed bytes outside $MFT alone, every directory whose
// changed INDX blocks list names. Readers walk the new side meanwhile
// (go test -race).
func TestTouchedCoversChangedBytes(t *testing.T) {
	for _, cluster := range []int{4096, 1024} {
		t.Run(fmt.Sprintf("cluster-%d", cluster), func(t *testing.T) {
			base := seedVolume(t, cluster)
			rng := rand.New(rand.NewPCG(uint64(cluster), 11))
			var records, dirs, indx int
			for round := range 8 {
				cow := &cowDev{base: base, blocks: map[int64][]byte{}}
				w, err := Open(cow, Options{})
				if err != nil {
					t.Fatal(err)
				}
				wl := fswork.New(w, rng)
				for range 1 + rng.IntN(60) {
					wl.Step()
				}
				a, err := Open(base, Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				b, err := Open(cow, Options{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				exts := cow.extents()
				touched, onlyIndex := map[volume.Ino]bool{}, map[volume.Ino]bool{}
				var wg sync.WaitGroup
				stop := make(chan struct{})
				wg.Go(func() { // a reader beside the mapping
					r := fswork.New(b, rand.New(rand.NewPCG(3, 4)))
					for {
						select {
						case <-stop:
							return
						default:
							_, e := r.Pick()
							b.GetAttr(e.Ino)
						}
					}
				})
				for _, v := range []*Volume{a, b} {
					for set, ex := range map[*map[volume.Ino]bool][]volume.Extent{&touched: exts, &onlyIndex: outsideMFT(exts, a, b)} {
						inos, err := v.Touched(ex)
						if err != nil {
							t.Fatalf("round %d: Touched: %v", round, err)
						}
						for _, n := range inos {
							(*set)[n] = true
						}
					}
				}
				close(stop)
				wg.Wait()
				count := max(a.mftSize, b.mftSize) / int64(a.geo.recordSize)
				for n := uint64(0); n < uint64(count); n++ {
					if ra, rb := rawRecord(a, n), rawRecord(b, n); !bytes.Equal(ra, rb) {
						records++
						if !touched[volume.Ino(n)] {
							t.Fatalf("round %d: MFT record %d changed, not touched", round, n)
						}
						for _, v := range []*Volume{a, b} {
							if r, err := v.readRecord(n); err == nil && r.base != 0 && !touched[volume.Ino(r.base)] {
								t.Fatalf("round %d: extension record %d changed, its base %d not touched", round, n, r.base)
							}
						}
					}
					la, errA := a.ReadDir(volume.Ino(n))
					lb, errB := b.ReadDir(volume.Ino(n))
					if errA == nil && errB == nil && !slices.Equal(la, lb) {
						dirs++
						if !touched[volume.Ino(n)] {
							t.Fatalf("round %d: directory %d's listing changed, not touched", round, n)
						}
					}
					ia, ib := indexBlocks(a, n), indexBlocks(b, n)
					if ia == nil {
						ia = map[int64][]byte{}
					}
					for vcn := range ib {
						ia[vcn] = ia[vcn] // a block only b has counts too
					}
					for vcn, x := range ia {
						y := ib[vcn]
						if !bytes.Equal(x, y) && (hasEntries(x) || hasEntries(y)) {
							indx++
							if !onlyIndex[volume.Ino(n)] {
								t.Fatalf("round %d: directory %d: INDX block %d changed, not found from the bytes outside $MFT", round, n, vcn)
							}
						}
					}
				}
				cow.apply()
			}
			if records == 0 || dirs == 0 || indx == 0 {
				t.Fatalf("the workloads changed %d records, %d listings, %d INDX blocks: nothing was proved", records, dirs, indx)
			}
			t.Logf("%d changed records, %d changed listings, %d changed INDX blocks, all found", records, dirs, indx)
		})
	}
}

// TestTouchedExtensionNamesBase: the bytes of an extension record alone
// (a file whose 8 long names spill out of its base record) touch the
// file itself.
func TestTouchedExtensionNamesBase(t *testing.T) {
	v, err := Open(seedVolume(t, 4096), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := v.Root()
	for d := range 6 {
		a, err := v.Lookup(dir, fmt.Sprintf("level%d", d))
		if err != nil {
			t.Fatal(err)
		}
		dir = a.Ino
	}
	f, err := v.Lookup(dir, "linked")
	if err != nil {
		t.Fatal(err)
	}
	in, err := v.loadInode(uint64(f.Ino))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.recs) < 2 {
		t.Fatalf("the 8 links left no extension record (records %v)", in.recs)
	}
	rs, cs := int64(v.geo.recordSize), v.geo.clusterSize
	for _, ext := range in.recs[1:] {
		pos := int64(ext) * rs
		r := v.mftRuns[findRun(v.mftRuns, pos/cs)]
		off := r.lcn*cs + pos - r.vcn*cs
		got, err := v.Touched([]volume.Extent{{Off: off, Len: rs}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, f.Ino) || !slices.Contains(got, volume.Ino(ext)) {
			t.Fatalf("extension record %d's bytes touched %v, want it and its base %d", ext, got, f.Ino)
		}
	}
}

// TestNarrowListingsNtfs3g: a commit made by another writer (ntfs-3g
// deletes and creates names in a big directory, freeing and splitting
// index blocks as it likes): each side's narrowed listing is its ReadDir
// minus entries, and every entry left out is on both sides with the same
// file, in unchanged bytes, and not one keep asks for.
func TestNarrowListingsNtfs3g(t *testing.T) {
	requireNTFSTools(t)
	dir := t.TempDir()
	before := bigDirImage(t, dir, 3000)
	after := filepath.Join(dir, "after.img")
	copyFile(t, before, after)
	mnt, unmount := mount3g(t, after)
	sys := filepath.Join(mnt, "Windows", "System32")
	for i := 0; i < 3000; i++ {
		switch {
		case i >= 1000 && i < 1600 || i%97 == 0: // a run of blocks emptied, a few scattered
			if err := os.Remove(filepath.Join(sys, sys32Name(i))); err != nil {
				t.Fatal(err)
			}
		case i%501 == 0:
			if err := os.WriteFile(filepath.Join(sys, sys32Name(i)), []byte("patched"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 50; i++ {
		if err := os.WriteFile(filepath.Join(sys, fmt.Sprintf("new-%03d.dll", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unmount()
	na, _ := checkNarrowed(t, before, after, func(ino volume.Ino) bool { return ino%13 == 0 })
	if len(na) == 0 {
		t.Fatal("nothing listed before")
	}
}

// checkNarrowed compares System32's narrowed listings of images before
// and after with their ReadDir: each narrowed one is its ReadDir minus
// entries, and every entry left out is on both sides with the same file,
// and not one keep (the files the walk must see wherever they are) asks for.
func checkNarrowed(t *testing.T, before, after string, keep func(volume.Ino) bool) (na, nb []volume.DirEntry) {
	t.Helper()
	va := openVol(t, before, 0, Options{ReadOnly: true})
	vb := openVol(t, after, 0, Options{ReadOnly: true})
	exts := changedBlocks(t, before, after)
	d := lookupPath(t, va, "Windows", "System32")
	na, nb, left, err := va.NarrowListings(d, vb, exts, keep)
	if err != nil {
		t.Fatal(err)
	}
	fa, err := va.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := vb.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	outA, outB := leftOut(t, fa, na), leftOut(t, fb, nb)
	if len(outA) != len(outB) || len(outA) == 0 {
		t.Fatalf("left out %d before, %d after (reported %d); listed %d and %d: want the same names left out on both sides", len(outA), len(outB), left, len(na), len(nb))
	}
	inB := map[string]volume.Ino{}
	for _, e := range outB {
		inB[e.Name] = e.Ino
	}
	for _, e := range outA {
		if ino, ok := inB[e.Name]; !ok || ino != e.Ino || keep(e.Ino) {
			t.Fatalf("%s (file %d) left out, after side has file %d (%v), keep %v", e.Name, e.Ino, ino, ok, keep(e.Ino))
		}
	}
	t.Logf("%d and %d names listed of %d and %d, %d left out", len(na), len(nb), len(fa), len(fb), len(outA))
	return na, nb
}

// TestNarrowListingsFreedLeaf: a commit removes the last name of an
// index leaf, which offvm's writer then frees without writing it: the
// block keeps its bytes but the after side's tree no longer reaches it,
// so its name must be listed as gone, not left out as common.
func TestNarrowListingsFreedLeaf(t *testing.T) {
	requireNTFSTools(t)
	dir := t.TempDir()
	before := bigDirImage(t, dir, 3000)
	v := openVol(t, before, 0, Options{})
	sys := lookupPath(t, v, "Windows", "System32")
	leaf, names := twoNameLeaf(t, v, sys)
	for _, n := range names[:len(names)-1] {
		if err := v.Unlink(sys, n); err != nil {
			t.Fatal(err)
		}
	}
	after := filepath.Join(dir, "after.img")
	copyFile(t, before, after)
	w := openVol(t, after, 0, Options{})
	last := names[len(names)-1]
	if err := w.Unlink(sys, last); err != nil {
		t.Fatal(err)
	}
	if leaves, _ := treeLeaves(t, w, sys); slices.Contains(leaves, leaf) {
		t.Fatalf("leaf %d still in the tree after its last name went: the case is not made", leaf)
	}
	na, _ := checkNarrowed(t, before, after, func(volume.Ino) bool { return false })
	if !slices.ContainsFunc(na, func(e volume.DirEntry) bool { return e.Name == last }) {
		t.Fatalf("%s, in a block the after side no longer reaches, is not listed before", last)
	}
}

// twoNameLeaf is the first INDX leaf of directory d holding two names
// or more, and them.
func twoNameLeaf(t *testing.T, v *Volume, d volume.Ino) (int64, []string) {
	t.Helper()
	order, byLeaf := treeLeaves(t, v, d)
	for _, vcn := range order {
		if len(byLeaf[vcn]) >= 2 {
			return vcn, byLeaf[vcn]
		}
	}
	t.Fatal("no index leaf with two names")
	return 0, nil
}

// treeLeaves lists the INDX leaves directory d's tree reaches, in order,
// and the names each holds.
func treeLeaves(t *testing.T, v *Volume, d volume.Ino) ([]int64, map[int64][]string) {
	t.Helper()
	di, err := v.dirOf(uint64(d))
	if err != nil {
		t.Fatal(err)
	}
	leaves := map[int64]bool{}
	byLeaf := map[int64][]string{}
	var order []int64
	err = walkTree(di, func(vcn int64) (*indexNode, error) {
		n, err := v.node(di, vcn)
		if err == nil && n.leaf {
			leaves[vcn] = true
			order = append(order, vcn)
		}
		return n, err
	}, func(e *indexEntry, vcn int64) error {
		if leaves[vcn] && e.ns != nsDOS {
			byLeaf[vcn] = append(byLeaf[vcn], decodeName(nameBytes(e.name)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return order, byLeaf
}

// changedBlocks is where two images differ, in 4 KiB blocks.
func changedBlocks(t *testing.T, a, b string) []volume.Extent {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []volume.Extent
	for off := 0; off < len(x); off += 4096 {
		if !bytes.Equal(x[off:off+4096], y[off:off+4096]) {
			out = append(out, volume.Extent{Off: int64(off), Len: 4096})
		}
	}
	return out
}

// leftOut checks that narrowed is full with entries removed, in order,
// and returns those.
func leftOut(t *testing.T, full, narrowed []volume.DirEntry) []volume.DirEntry {
	t.Helper()
	var out []volume.DirEntry
	i := 0
	for _, e := range full {
		if i < len(narrowed) && narrowed[i] == e {
			i++
			continue
		}
		out = append(out, e)
	}
	if i != len(narrowed) {
		t.Fatalf("the narrowed listing is not the full one minus entries: %d of %d matched in order", i, len(narrowed))
	}
	return out
}
