package ntfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// readCountDev counts reads of the device and fails those that touch the
// bad range [badOff, badOff+badLen).
type readCountDev struct {
	volume.Device
	reads          atomic.Int64
	badOff, badLen int64
}

func (d *readCountDev) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	if d.badLen > 0 && off < d.badOff+d.badLen && d.badOff < off+int64(len(p)) {
		return 0, errors.New("injected read error")
	}
	return d.Device.ReadAt(p, off)
}

// manySize is the size baseImage gives /many/file-i.
func manySize(i int) int64 { return int64(i * 13) }

// TestRecordsParallelThenWrite: parallel readers look files up (their
// records parsed and cached) while the first writes change records and
// take free ones, so that records it changes are read as written.
// Checked against the engine's own sizes after the writes and by ntfs-3g
// on the written image. Run with -race.
func TestRecordsParallelThenWrite(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	dev, v := openCounted(t, img)
	many := mustResolve(t, v, "/many")
	lookupAll := func(g, _ int) error {
		for i := g; i < 300; i += 4 {
			if i == 5 || i == 7 { // what the writer changes
				continue
			}
			a, err := v.Lookup(many, fmt.Sprintf("file-%04d.dat", i))
			if err != nil {
				return err
			}
			if a.Size != manySize(i) {
				return fmt.Errorf("file-%04d.dat: size %d, want %d", i, a.Size, manySize(i))
			}
		}
		return nil
	}
	// first lookups, in parallel: one round each
	var first sync.WaitGroup
	for g := range 4 {
		first.Add(1)
		go func() {
			defer first.Done()
			if err := lookupAll(g, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	first.Wait()
	if dev.reads.Load() == 0 {
		t.Fatal("300 first lookups read nothing from the device")
	}
	// readers go on while the writer changes records: new files (which
	// take free records), a size, an unlink
	stop := startReaders(t, 4, lookupAll)
	five, err := v.Lookup(many, "file-0005.dat")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Truncate(five.Ino, 777); err != nil {
		t.Fatal(err)
	}
	if err := v.Unlink(many, "file-0007.dat"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		a, err := v.Create(many, fmt.Sprintf("new-%02d.dat", i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.WriteAt(a.Ino, pattern(100+i, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	sizeOf := checkManyWritten(t, v, many, img)
	if sizeOf == nil {
		return
	}
	for i := 0; i < 300; i += 37 {
		if n, err := sizeOf(fmt.Sprintf("file-%04d.dat", i)); i != 7 && (err != nil || n != manySize(i)) {
			t.Errorf("ntfs-3g: file-%04d.dat size %d, %v; want %d", i, n, err, manySize(i))
		}
	}
}

// TestRecordReadErrorNamesTheRecord: a bad sector under one record
// costs its neighbours nothing; only the record that is itself
// unreadable fails, with an error naming it.
func TestRecordReadErrorNamesTheRecord(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	clean := openVol(t, img, 0, Options{})
	many, err := resolve(clean, "/many")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := clean.Lookup(many, "file-0010.dat")
	if err != nil {
		t.Fatal(err)
	}
	// the device offset of the bad record, through $MFT's runlist
	size := int64(clean.geo.recordSize)
	off := int64(bad.Ino) * size
	r := clean.mftRuns[findRun(clean.mftRuns, off/clean.geo.clusterSize)]
	pos := r.lcn*clean.geo.clusterSize + off - r.vcn*clean.geo.clusterSize

	dev := &readCountDev{Device: openDev(t, img, 0), badOff: pos, badLen: size}
	v, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{9, 11, 12} { // its neighbours in $MFT
		a, err := v.Lookup(many, fmt.Sprintf("file-%04d.dat", i))
		if err != nil || a.Size != manySize(i) {
			t.Errorf("file-%04d.dat beside a bad record: size %d, %v; want %d", i, a.Size, err, manySize(i))
		}
	}
	_, err = v.Lookup(many, "file-0010.dat")
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("the bad record read as %v, want EIO", err)
	}
	if want := fmt.Sprintf("MFT record %d", bad.Ino); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
}

// checkManyWritten checks what the writers of the parallel tests did to
// /many, in v and then with ntfs-3g on img: file-0005.dat truncated to
// 777 bytes, file-0007.dat removed, new-00.dat..new-19.dat of 100+i
// bytes. It returns ntfs-3g's sizes, nil when v already failed.
func checkManyWritten(t *testing.T, v *Volume, many volume.Ino, img string) func(string) (int64, error) {
	t.Helper()
	if a, err := v.Lookup(many, "file-0005.dat"); err != nil || a.Size != 777 {
		t.Errorf("file-0005.dat after truncate: size %d, %v; want 777", a.Size, err)
	}
	if _, err := v.Lookup(many, "file-0007.dat"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("file-0007.dat after unlink: %v, want ENOENT", err)
	}
	for i := 0; i < 20; i++ {
		if a, err := v.Lookup(many, fmt.Sprintf("new-%02d.dat", i)); err != nil || a.Size != int64(100+i) {
			t.Errorf("new-%02d.dat: size %d, %v; want %d", i, a.Size, err, 100+i)
		}
	}
	if t.Failed() {
		return nil
	}
	checkConsistent(t, img)
	mnt, _ := mount3g(t, img, "ro")
	sizeOf := func(name string) (int64, error) {
		st, err := os.Stat(filepath.Join(mnt, "many", name))
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	if n, err := sizeOf("file-0005.dat"); err != nil || n != 777 {
		t.Errorf("ntfs-3g: file-0005.dat size %d, %v; want 777", n, err)
	}
	if _, err := sizeOf("file-0007.dat"); !os.IsNotExist(err) {
		t.Errorf("ntfs-3g: file-0007.dat after unlink: %v", err)
	}
	for i := 0; i < 20; i++ {
		if n, err := sizeOf(fmt.Sprintf("new-%02d.dat", i)); err != nil || n != int64(100+i) {
			t.Errorf("ntfs-3g: new-%02d.dat size %d, %v; want %d", i, n, err, 100+i)
		}
	}
	return sizeOf
}
