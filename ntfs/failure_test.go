package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// faultDev fails the failAt-th write (counting from 1) after writing half
// of it, as a device that tears a write would; it remembers, for every
// byte range written since arm, the bytes that were there before, so a
// test can tell whether a failed operation left the device as it was.
type faultDev struct {
	volume.Device
	mu     sync.Mutex
	failAt int
	writes int
	armed  bool
	before []undoWrite // the test's own record, not the engine's
}

func (d *faultDev) arm(failAt int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failAt, d.writes, d.armed, d.before = failAt, 0, true, nil
}

func (d *faultDev) disarm() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = false
	return d.writes
}

func (d *faultDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed {
		old := make([]byte, len(p))
		d.Device.ReadAt(old, off)
		d.before = append(d.before, undoWrite{off, old})
		d.writes++
		if d.writes == d.failAt {
			d.armed = false
			n, _ := d.Device.WriteAt(p[:len(p)/2], off)
			return n, errors.New("injected I/O error")
		}
	}
	return d.Device.WriteAt(p, off)
}

// unchanged reports the first range written since arm whose bytes differ
// from what was there before the first write to them, unless it lies in
// clusters $Bitmap (read from the device as it is now) says are free:
// what free clusters hold means nothing.
func (d *faultDev) unchanged(t testing.TB) error {
	free := freeClusters(t, d.Device)
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[int64]bool{}
	for _, u := range d.before {
		if seen[u.off] { // a later write over the same bytes saw the op's own bytes
			continue
		}
		seen[u.off] = true
		now := make([]byte, len(u.old))
		d.Device.ReadAt(now, u.off)
		if !bytes.Equal(now, u.old) && !free(u.off, int64(len(u.old))) {
			return fmt.Errorf("%d bytes at %d differ from before the operation", len(u.old), u.off)
		}
	}
	return nil
}

// faultOps are single operations on the big directory, each done both
// through our engine and through ntfs-3g; the names near sys32Name(500)
// fill one leaf until it splits, the removals around 2000 empty leaves
// until they merge.
func faultOps() []bigDirOp {
	sys := "Windows/System32/"
	var ops []bigDirOp
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("%s-patch%02d", sys32Name(500), i)
		ops = append(ops, bigDirOp{"create " + name,
			func(root string) error { return os.WriteFile(filepath.Join(root, sys, name), nil, 0o644) },
			func(v *Volume, d volume.Ino) error { _, err := v.Create(d, name, 0o644); return err }})
	}
	for i := 2000; i < 2040; i++ {
		name := sys32Name(i)
		ops = append(ops, bigDirOp{"unlink " + name,
			func(root string) error { return os.Remove(filepath.Join(root, sys, name)) },
			func(v *Volume, d volume.Ino) error { return v.Unlink(d, name) }})
	}
	data := bytes.Repeat([]byte("fault "), 2000)
	ops = append(ops, bigDirOp{"overwrite in place",
		func(root string) error {
			f, err := os.OpenFile(filepath.Join(root, sys, sys32Name(70)), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteAt(data[:5000], 10)
			f.Close()
			return err
		},
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(70))
			if err == nil {
				_, err = v.WriteAt(ino, data[:5000], 10)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"append",
		func(root string) error {
			f, err := os.OpenFile(filepath.Join(root, sys, sys32Name(77)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(data)
			f.Close()
			return err
		},
		func(v *Volume, d volume.Ino) error {
			a, err := v.Lookup(d, sys32Name(77))
			if err == nil {
				_, err = v.WriteAt(a.Ino, data, a.Size)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"rename out",
		func(root string) error {
			return os.Rename(filepath.Join(root, sys, sys32Name(3000)), filepath.Join(root, "out-"+sys32Name(3000)))
		},
		func(v *Volume, d volume.Ino) error {
			return v.Rename(d, sys32Name(3000), v.Root(), "out-"+sys32Name(3000))
		}})
	ops = append(ops, bigDirOp{"mkdir",
		func(root string) error { return os.Mkdir(filepath.Join(root, sys, "catroot-new"), 0o755) },
		func(v *Volume, d volume.Ino) error { _, err := v.Mkdir(d, "catroot-new", 0o755); return err }})
	ops = append(ops, bigDirOp{"link",
		func(root string) error {
			return os.Link(filepath.Join(root, sys, sys32Name(84)), filepath.Join(root, sys, "link-"+sys32Name(84)))
		},
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(84))
			if err == nil {
				_, err = v.Link(ino, d, "link-"+sys32Name(84))
			}
			return err
		}})
	ops = append(ops, bigDirOp{"truncate",
		func(root string) error { return os.Truncate(filepath.Join(root, sys, sys32Name(91)), 3) },
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(91))
			if err == nil {
				err = v.Truncate(ino, 3)
			}
			return err
		}})
	return ops
}

// TestFailureAtEveryWrite makes each operation fail at each of its
// device writes in turn (a torn write and an I/O error) and wants the
// device byte for byte as before; the operation then succeeds, and at
// the end ntfsresize finds the volume clean and ntfs-3g reads the same
// tree as from a copy that ntfs-3g changed the same way.
func TestFailureAtEveryWrite(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	dir := t.TempDir()
	img := bigDirImage(t, dir, bigDirNames)
	ref := filepath.Join(dir, "ref.img")
	copyFile(t, img, ref)

	fd := &faultDev{Device: openDev(t, img, 0)}
	v, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sys := lookupPath(t, v, "Windows", "System32")
	mnt, unmount := mount3g(t, ref)
	injected := 0
	for _, op := range faultOps() {
		for k := 1; ; k++ {
			fd.arm(k)
			err := op.eng(v, sys)
			writes := fd.disarm()
			if writes < k { // the op finished without reaching write k
				if err != nil {
					t.Fatalf("%s: %v", op.name, err)
				}
				break
			}
			injected++
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("%s, write %d failed: the operation says %v", op.name, k, err)
			}
			if err := fd.unchanged(t); err != nil {
				t.Fatalf("%s, write %d failed: %v", op.name, k, err)
			}
			if err := cacheMatchesDevice(v, fd.Device); err != nil {
				t.Fatalf("%s, write %d failed: %v", op.name, k, err)
			}
		}
		if err := op.host(mnt); err != nil {
			t.Fatalf("%s through ntfs-3g: %v", op.name, err)
		}
	}
	unmount()
	t.Logf("%d operations, %d injected failures, each left the device as before", len(faultOps()), injected)
	if injected < 2*len(faultOps()) {
		t.Errorf("only %d failures injected over %d operations", injected, len(faultOps()))
	}
	checkConsistent(t, img)
	m1, u1 := mount3g(t, img, "ro")
	m2, u2 := mount3g(t, ref, "ro")
	diffTrees(t, walkHost(t, m2), walkHost(t, m1))
	u1()
	u2()
}

// TestParallelReadersAndWriters runs readers (lookups, listings, reads of
// the big directory) beside writers (creates, writes, unlinks) on one
// volume; run with -race. ntfsresize and ntfs-3g check the result.
func TestParallelReadersAndWriters(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	const names, steps = 2000, 60
	img := bigDirImage(t, t.TempDir(), names)
	v := openVol(t, img, 0, Options{})
	sys := lookupPath(t, v, "Windows", "System32")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%400 == 0 {
					if _, err := v.ReadDir(sys); err != nil {
						errs <- fmt.Errorf("reader %d: ReadDir: %w", r, err)
						return
					}
				}
				a, err := v.Lookup(sys, sys32Name((i*7+r)%20*7))
				if err != nil {
					errs <- fmt.Errorf("reader %d: Lookup: %w", r, err)
					return
				}
				if _, err := v.ReadAt(a.Ino, buf, 0); err != nil && !errors.Is(err, io.EOF) {
					errs <- fmt.Errorf("reader %d: ReadAt: %w", r, err)
					return
				}
			}
		}(r)
	}
	var ww sync.WaitGroup
	for w := 0; w < 4; w++ {
		ww.Add(1)
		go func(w int) {
			defer ww.Done()
			for i := 0; i < steps; i++ {
				name := fmt.Sprintf("writer-%d-file-%03d-with-a-long-name.dll", w, i)
				a, err := v.Create(sys, name, 0o644)
				if err == nil {
					_, err = v.WriteAt(a.Ino, []byte(name), 0)
				}
				if err == nil {
					err = v.Unlink(sys, sys32Name(200+w*steps+i))
				}
				if err == nil && i%3 == 0 {
					err = v.Unlink(sys, name)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d step %d: %w", w, i, err)
					return
				}
			}
		}(w)
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkConsistent(t, img)
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	ents, err := os.ReadDir(filepath.Join(mnt, "Windows/System32"))
	if err != nil {
		t.Fatal(err)
	}
	if want := names + 1 - 4*steps + 4*(steps-steps/3); len(ents) != want { // +1: the shared WinSxS file
		t.Errorf("ntfs-3g lists %d names in System32, want %d", len(ents), want)
	}
	for w := 0; w < 4; w++ {
		name := fmt.Sprintf("writer-%d-file-%03d-with-a-long-name.dll", w, 1)
		b, err := os.ReadFile(filepath.Join(mnt, "Windows/System32", name))
		if err != nil || string(b) != name {
			t.Errorf("ntfs-3g reads %s as %q (%v)", name, b, err)
		}
	}
}

// freeClusters reads $Bitmap from dev and says whether a byte range lies
// in free clusters.
func freeClusters(t testing.TB, dev volume.Device) func(off, n int64) bool {
	t.Helper()
	v, err := Open(dev, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := v.loadInode(recBitmap)
	if err != nil {
		t.Fatal(err)
	}
	s := in.find(atData, "")
	bits := make([]byte, s.dataSize)
	if _, err := v.readStream(s, bits, 0); err != nil {
		t.Fatal(err)
	}
	cs := v.geo.clusterSize
	return func(off, n int64) bool {
		for c := off / cs; c <= (off+n-1)/cs; c++ {
			if bits[c/8]&(1<<(c%8)) != 0 {
				return false
			}
		}
		return true
	}
}

// TestNoSpaceWhileSplitting fills a small volume, then creates names in a
// big directory until an index split (or the MFT) needs a cluster there is
// not: that create fails with ENOSPC and leaves the device byte for byte
// as it was; ntfsresize and ntfs-3g then find the volume sound.
func TestNoSpaceWhileSplitting(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 24, 4096)
	mnt, unmount := mount3g(t, img)
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for i := 0; i < 1500; i++ {
		fmt.Fprintf(&names, "%s\n", sys32Name(i))
	}
	cmd := exec.Command("xargs", "touch")
	cmd.Dir, cmd.Stdin = filepath.Join(mnt, "dir"), &names
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("touch: %v\n%s", err, out)
	}
	unmount()
	fd := &faultDev{Device: openDev(t, img, 0)}
	v, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill, err := v.Create(v.Root(), "fill", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for _, chunk := range []int{1 << 20, 4096} { // until no cluster is left
		for {
			if _, err := v.WriteAt(fill.Ino, make([]byte, chunk), off); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
			off += int64(chunk)
		}
	}
	d := lookupPath(t, v, "dir")
	made, failed := 0, 0
	for i := 0; i < 3000 && failed < 5; i++ {
		fd.arm(0) // record what the op writes, fail nothing
		_, err := v.Create(d, fmt.Sprintf("%s-full-%04d", sys32Name(700), i), 0o644)
		fd.disarm()
		if err == nil {
			made++
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("create %d on a full volume: %v", i, err)
		}
		if failed++; failed == 1 {
			t.Logf("create %d: %v", i, err)
		}
		if err := fd.unchanged(t); err != nil {
			t.Fatalf("create %d failed with ENOSPC: %v", i, err)
		}
		if err := cacheMatchesDevice(v, fd.Device); err != nil {
			t.Fatalf("create %d failed with ENOSPC: %v", i, err)
		}
	}
	if failed == 0 {
		t.Fatalf("%d creates on a full volume all succeeded: no split ran out of space", made)
	}
	t.Logf("%d creates fitted, then ENOSPC left the device as it was (%d tries)", made, failed)
	if err := v.Truncate(fill.Ino, off/2); err != nil { // ntfsresize calls a full volume an error
		t.Fatal(err)
	}
	checkConsistent(t, img)
	mnt, unmount = mount3g(t, img, "ro")
	defer unmount()
	ents, err := os.ReadDir(filepath.Join(mnt, "dir"))
	if err != nil || len(ents) != 1500+made {
		t.Errorf("ntfs-3g lists %d names (%v), want %d", len(ents), err, 1500+made)
	}
}

// TestFailureWhileMFTGrows creates files on a fresh volume until $MFT has
// grown twice, failing each create at each of its writes first: the
// creates that grow $MFT (record 0, the new records, the bitmaps) are
// undone like any other.
func TestFailureWhileMFTGrows(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 16, 4096)
	fd := &faultDev{Device: openDev(t, img, 0)}
	v, err := Open(fd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := v.mftSize
	injected, n := 0, 0
	for ; v.mftSize < start+2*mftGrowRecords*int64(v.geo.recordSize) && n < 400; n++ {
		injected += createFailingEachWrite(t, fd, v, v.Root(), fmt.Sprintf("file-%03d-with-a-name.txt", n))
	}
	if v.mftSize < start+2*mftGrowRecords*int64(v.geo.recordSize) {
		t.Fatalf("$MFT did not grow twice in %d creates (%d -> %d bytes)", n, start, v.mftSize)
	}
	t.Logf("%d creates grew $MFT from %d to %d bytes; %d injected failures undone", n, start, v.mftSize, injected)
	checkConsistent(t, img)
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "file-") {
			got++
		}
	}
	if got != n {
		t.Errorf("ntfs-3g lists %d files, want %d", got, n)
	}
	compareStatFS(t, mnt, img)
}

// createFailingEachWrite creates name in dir, first failing the create at
// each of its writes in turn (each failure must be undone, the device as
// before it); it returns how many failures it injected.
func createFailingEachWrite(t *testing.T, fd *faultDev, v *Volume, dir volume.Ino, name string) int {
	t.Helper()
	for k := 1; ; k++ {
		fd.arm(k)
		_, err := v.Create(dir, name, 0o644)
		if writes := fd.disarm(); writes < k {
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			return k - 1
		}
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("create %s, write %d failed: %v", name, k, err)
		}
		if err := fd.unchanged(t); err != nil {
			t.Fatalf("create %s, write %d failed: %v", name, k, err)
		}
		if err := cacheMatchesDevice(v, fd.Device); err != nil {
			t.Fatalf("create %s, write %d failed: %v", name, k, err)
		}
	}
}
