package ntfs

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// listInos lists /many of v: its entries' numbers and names.
func listInos(t *testing.T, v *Volume, dir volume.Ino) ([]volume.Ino, []string) {
	t.Helper()
	ents, err := v.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inos, names := make([]volume.Ino, len(ents)), make([]string, len(ents))
	for i, e := range ents {
		inos[i], names[i] = e.Ino, e.Name
	}
	return inos, names
}

// openMany is the base image, opened for writing, and its /many.
func openMany(t *testing.T) (string, *Volume, volume.Ino) {
	t.Helper()
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	v := openVol(t, img, 0, Options{})
	return img, v, mustResolve(t, v, "/many")
}

// TestPrefetchReadsListingTogether: the records of a listing's 300 files
// (created one after another, so lying together in $MFT) are read in a
// few device reads of up to 64 records, and the lookups that follow read
// nothing; without the prefetch the same lookups read one record each.
// The sizes looked up are those the files were written with (by ntfs-3g).
func TestPrefetchReadsListingTogether(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	for _, prefetch := range []bool{true, false} {
		dev, v := openCounted(t, img)
		many := mustResolve(t, v, "/many")
		inos, names := listInos(t, v, many)
		if len(inos) != 300 {
			t.Fatalf("/many lists %d entries, want 300", len(inos))
		}
		dev.reads.Store(0)
		if prefetch {
			v.Prefetch(inos)
			if n := dev.reads.Load(); n > 300/maxPrefetchSpan+2 {
				t.Errorf("prefetch of 300 records: %d device reads, want at most %d", n, 300/maxPrefetchSpan+2)
			}
			dev.reads.Store(0)
		}
		for i, name := range names {
			a, err := v.Lookup(many, name)
			if err != nil {
				t.Fatal(err)
			}
			if want := manySize(i); a.Size != want || a.Ino != inos[i] {
				t.Fatalf("%s: size %d ino %d, want %d and %d", name, a.Size, a.Ino, want, inos[i])
			}
		}
		n := dev.reads.Load()
		switch {
		case prefetch && n != 0:
			t.Errorf("lookups after the prefetch: %d device reads, want none", n)
		case !prefetch && n < 300:
			t.Errorf("lookups without a prefetch: %d device reads, want one per record (300)", n)
		}
	}
}

// TestPrefetchParallelThenWrite: readers list /many, prefetch its records
// and look every file up, in parallel, while a writer truncates one file,
// removes another and creates new ones; the records the prefetch cached
// are dropped by the writes (cache.forgetInode), so that what is looked
// up after each write is what was written, though the readers fill the
// cache again all along. Checked by ntfs-3g on the written image. Run
// with -race.
func TestPrefetchParallelThenWrite(t *testing.T) {
	img, v, many := openMany(t)
	inos, names := listInos(t, v, many)
	stop := startReaders(t, 4, func(g, _ int) error {
		for lo := g * 16; lo < len(inos); lo += maxPrefetchSpan {
			v.Prefetch(inos[lo:min(lo+maxPrefetchSpan, len(inos))])
		}
		for i, name := range names {
			if i == 5 || i == 7 { // what the writer changes
				continue
			}
			if a, err := v.Lookup(many, name); err != nil || a.Size != manySize(i) {
				return fmt.Errorf("%s: size %d, %v; want %d", name, a.Size, err, manySize(i))
			}
		}
		return nil
	})
	v.Prefetch(inos)
	if _, err := v.Lookup(many, names[5]); err != nil { // cached before the write
		t.Fatal(err)
	}
	if err := v.Truncate(inos[5], 777); err != nil {
		t.Fatal(err)
	}
	v.Prefetch(inos)
	if a, err := v.Lookup(many, names[5]); err != nil || a.Size != 777 {
		t.Errorf("%s right after its truncate: size %d, %v; want 777", names[5], a.Size, err)
	}
	if err := v.Unlink(many, names[7]); err != nil {
		t.Fatal(err)
	}
	v.Prefetch(inos)
	if _, err := v.Lookup(many, names[7]); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("%s right after its unlink: %v, want ENOENT", names[7], err)
	}
	for i := 0; i < 20; i++ {
		a, err := v.Create(many, fmt.Sprintf("new-%02d.dat", i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.WriteAt(a.Ino, pattern(100+i, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
		v.Prefetch([]volume.Ino{a.Ino - 1, a.Ino, a.Ino + 1})
		if b, err := v.Lookup(many, fmt.Sprintf("new-%02d.dat", i)); err != nil || b.Size != int64(100+i) {
			t.Errorf("new-%02d.dat right after its write: size %d, %v; want %d", i, b.Size, err, 100+i)
		}
	}
	stop()
	checkManyWritten(t, v, many, img)
}

// lookInOrder looks /many's names up in order through LookupAhead, as
// rsync's stats come through FUSE, checking the sizes the files were
// written with; skip names what a writer changes meanwhile.
func lookInOrder(v *Volume, many volume.Ino, names []string, skip func(i int) bool) error {
	for i, name := range names {
		if skip(i) {
			continue
		}
		if a, err := v.LookupAhead(many, name); err != nil || a.Size != manySize(i) {
			return fmt.Errorf("%s: size %d, %v; want %d", name, a.Size, err, manySize(i))
		}
	}
	return nil
}

// TestLookupAheadReadsInOrder: the 300 lookups of /many's names in order
// read the records of each index leaf's names together (a few dozen
// device reads, index blocks counted), where Lookup reads one record
// each; a lookup of one name alone reads what Lookup does.
func TestLookupAheadReadsInOrder(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	reads := map[bool]int64{}
	for _, ahead := range []bool{true, false} {
		dev, v := openCounted(t, img)
		many := mustResolve(t, v, "/many")
		_, names := listInos(t, v, many)
		v.cache.purge()
		dev.reads.Store(0)
		look := v.Lookup
		if ahead {
			look = v.LookupAhead
		}
		for i, name := range names {
			if a, err := look(many, name); err != nil || a.Size != manySize(i) {
				t.Fatalf("%s: size %d, %v; want %d", name, a.Size, err, manySize(i))
			}
		}
		reads[ahead] = dev.reads.Load()
	}
	t.Logf("300 lookups in order: %d device reads ahead, %d without", reads[true], reads[false])
	if reads[false] < 300 || reads[true] > 300/5 { // ~3 reads a leaf of ~19 names: the leaf, its records, the name above it
		t.Errorf("300 lookups in order: %d device reads ahead, %d without; want at most 60 and at least 300", reads[true], reads[false])
	}
	for _, name := range []string{"file-0150.dat", "file-0007.dat"} {
		var one [2]int64
		for k, ahead := range []bool{true, false} {
			dev, v := openCounted(t, img)
			many := mustResolve(t, v, "/many")
			dev.reads.Store(0)
			look := v.Lookup
			if ahead {
				look = v.LookupAhead
			}
			if _, err := look(many, name); err != nil {
				t.Fatal(err)
			}
			one[k] = dev.reads.Load()
		}
		if one[0] != one[1] {
			t.Errorf("one lookup of %s: %d device reads ahead, %d without; want the same", name, one[0], one[1])
		}
	}
}

// TestLookupAheadParallelThenWrite: readers look /many's names up in
// order (their neighbours' records read ahead and cached) while a writer
// truncates one file, removes another and creates new ones; what the
// writer looks up after each write, the same way, is what it wrote: the
// records read ahead are dropped by the writes like any cached record
// (cache.forgetInode); each file is looked up before its write too.
// Checked by ntfs-3g on the written image. Run with -race.
func TestLookupAheadParallelThenWrite(t *testing.T) {
	img, v, many := openMany(t)
	_, names := listInos(t, v, many)
	changed := func(i int) bool { return i == 5 || i == 7 }
	stop := startReaders(t, 4, func(g, _ int) error {
		return lookInOrder(v, many, names, changed)
	})
	if err := lookInOrder(v, many, names[:5], changed); err != nil { // names[5] read ahead
		t.Fatal(err)
	}
	a, err := v.LookupAhead(many, names[5])
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Truncate(a.Ino, 777); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{names[4], names[5]} {
		a, err = v.LookupAhead(many, name)
	}
	if err != nil || a.Size != 777 {
		t.Errorf("%s right after its truncate: size %d, %v; want 777", names[5], a.Size, err)
	}
	if err := v.Unlink(many, names[7]); err != nil {
		t.Fatal(err)
	}
	if _, err := v.LookupAhead(many, names[6]); err != nil {
		t.Fatal(err)
	}
	if _, err := v.LookupAhead(many, names[7]); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("%s right after its unlink: %v, want ENOENT", names[7], err)
	}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("new-%02d.dat", i)
		a, err := v.Create(many, name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.LookupAhead(many, name); err != nil { // cached empty
			t.Fatal(err)
		}
		if _, err := v.WriteAt(a.Ino, pattern(100+i, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
		if b, err := v.LookupAhead(many, name); err != nil || b.Size != int64(100+i) {
			t.Errorf("%s right after its write: size %d, %v; want %d", name, b.Size, err, 100+i)
		}
	}
	stop()
	checkManyWritten(t, v, many, img)
}
