package txn

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// scenario is an image in a directory and the virtual content a commit
// should give it.
type scenario struct {
	name   string
	format string
	setup  func(t *testing.T, image string) (target []byte)
}

func rawImage(t *testing.T, image string, data []byte) {
	t.Helper()
	if err := os.WriteFile(image, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tfmtImage(t *testing.T, image string, size int64, prefill []byte) {
	t.Helper()
	if err := createTfmt(image, size); err != nil {
		t.Fatal(err)
	}
	if prefill != nil {
		directWrite(t, image, "tfmt", prefill)
	}
}

var scenarios = []scenario{
	{"raw one byte", "raw", func(t *testing.T, image string) []byte {
		old := randomBytes(1, 1<<20)
		rawImage(t, image, old)
		target := bytes.Clone(old)
		target[500000] ^= 0xff
		return target
	}},
	{"raw scattered runs, odd size", "raw", func(t *testing.T, image string) []byte {
		old := randomBytes(2, 1<<20+1000)
		rawImage(t, image, old)
		target := bytes.Clone(old)
		copy(target[4090:], randomBytes(3, 20))        // across a block boundary
		copy(target[100000:], randomBytes(4, 200<<10)) // a long run
		copy(target[len(target)-10:], []byte("END OF IT!"))
		target[0] = 'X'
		return target
	}},
	{"tfmt fresh blocks (files grow)", "tfmt", func(t *testing.T, image string) []byte {
		tfmtImage(t, image, 2<<20, nil)
		target := make([]byte, 2<<20)
		copy(target[0:], randomBytes(5, 10000))
		copy(target[1<<20:], randomBytes(6, 300<<10))
		return target
	}},
	{"tfmt overwrite and allocate (table file shrinks)", "tfmt", func(t *testing.T, image string) []byte {
		first := make([]byte, 2<<20)
		copy(first[8192:], randomBytes(7, 100<<10))
		tfmtImage(t, image, 2<<20, first) // the table now sits at the end
		target := bytes.Clone(first)
		copy(target[8192+5000:], randomBytes(8, 3000))
		copy(target[1<<20+7:], randomBytes(9, 50000))
		return target
	}},
}

// TestCommitAndRollback: a commit gives exactly the files the format
// produces writing directly (sha256 of every host file), leaves an undo
// record and nothing else, and Rollback gives back the old files.
func TestCommitAndRollback(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			target := sc.setup(t, image)
			oldHash := hashDir(t, dir)
			exp := copyDir(t, dir)
			directWrite(t, filepath.Join(exp, "disk.img"), sc.format, target)
			newHash := hashDir(t, exp)

			res, err := commitTarget(image, sc.format, target)
			if err != nil {
				t.Fatal(err)
			}
			if got := hashDir(t, dir); got != newHash {
				t.Fatalf("after commit:\n%s\nwant (format writing directly):\n%s", got, newHash)
			}
			if res.Changed == 0 || res.Written == 0 || res.Files == 0 {
				t.Errorf("result %+v", res)
			}
			if s := sidecars(t, dir); !slices.Equal(s, []string{"disk.img" + UndoSuffix}) {
				t.Fatalf("sidecars after commit: %v", s)
			}
			if err := Rollback(image); err != nil {
				t.Fatal(err)
			}
			if got := hashDir(t, dir); got != oldHash {
				t.Fatalf("after rollback:\n%s\nwant:\n%s", got, oldHash)
			}
			if s := sidecars(t, dir); len(s) != 0 {
				t.Fatalf("sidecars after rollback: %v", s)
			}
			if err := Rollback(image); !errors.Is(err, ErrNoUndo) {
				t.Fatalf("second rollback: %v, want ErrNoUndo", err)
			}
			if rec, err := Recover(image); rec || err != nil {
				t.Fatalf("Recover on a clean image: %v, %v", rec, err)
			}
		})
	}
}

// TestCommitIdenticalWrites: rewriting what the image holds commits
// nothing and leaves the image file untouched, mtime included.
func TestCommitIdenticalWrites(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.img")
	old := randomBytes(10, 256<<10)
	rawImage(t, image, old)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(image, past, past)
	o := rawOverlay(t, image, dir)
	if _, err := o.WriteAt(old[4096:100000], 4096); err != nil {
		t.Fatal(err)
	}
	res, err := Commit(image, o, openRaw)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(image)
	if res.Changed != 0 || res.Written != 0 || !fi.ModTime().Equal(past) || o.Dirty() {
		t.Fatalf("result %+v, mtime %v (was %v), dirty %v", res, fi.ModTime(), past, o.Dirty())
	}
	if s := sidecars(t, dir); len(s) != 0 {
		t.Fatalf("sidecars: %v", s)
	}
}

// TestCommitTwice: after a commit the overlay is clean and reads the new
// image; a second commit works; Rollback undoes only the second.
func TestCommitTwice(t *testing.T) {
	for _, format := range []string{"raw", "tfmt"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			size := 1 << 20
			if format == "raw" {
				rawImage(t, image, make([]byte, size))
			} else {
				tfmtImage(t, image, int64(size), nil)
			}
			open := openers[format]
			base, err := open(image, vdisk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := NewOverlay(base, "")
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			one := bytes.Repeat([]byte{1}, 10000)
			o.WriteAt(one, 5000)
			if _, err := Commit(image, o, open); err != nil {
				t.Fatal(err)
			}
			if o.Dirty() {
				t.Fatal("dirty after commit")
			}
			afterFirst := hashDir(t, dir)
			got := make([]byte, 10000)
			if _, err := o.ReadAt(got, 5000); err != nil || !bytes.Equal(got, one) {
				t.Fatalf("overlay after commit reads %v, %v", got[:8], err)
			}
			o.WriteAt(bytes.Repeat([]byte{2}, 3000), 600000)
			if _, err := Commit(image, o, open); err != nil {
				t.Fatal(err)
			}
			v := readVirtual(t, image, format)
			if !bytes.Equal(v[5000:15000], one) || v[600000] != 2 || v[603000] != 0 {
				t.Fatal("second commit lost data")
			}
			if err := Rollback(image); err != nil {
				t.Fatal(err)
			}
			if hashDir(t, dir) != afterFirst {
				t.Fatal("rollback did not restore the state after the first commit")
			}
		})
	}
}

// TestRollbackRefuses: any change to a committed file since the commit
// makes Rollback refuse, say why, and leave files and undo record alone.
func TestRollbackRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, image string)
	}{
		{"committed byte rewritten, mtime restored", func(t *testing.T, image string) {
			fi, _ := os.Stat(image)
			f, _ := os.OpenFile(image, os.O_RDWR, 0)
			f.WriteAt([]byte{0x55}, 300001)
			f.Close()
			os.Chtimes(image, fi.ModTime(), fi.ModTime())
		}},
		{"mtime changed", func(t *testing.T, image string) {
			later := time.Now().Add(time.Hour)
			os.Chtimes(image, later, later)
		}},
		{"file grew", func(t *testing.T, image string) {
			f, _ := os.OpenFile(image, os.O_RDWR|os.O_APPEND, 0)
			f.Write([]byte{1})
			f.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			old := randomBytes(11, 1<<20)
			rawImage(t, image, old)
			target := bytes.Clone(old)
			copy(target[300000:], bytes.Repeat([]byte{0xaa}, 5000))
			if _, err := commitTarget(image, "raw", target); err != nil {
				t.Fatal(err)
			}
			tt.change(t, image)
			before := hashDir(t, dir)
			err := Rollback(image)
			if !errors.Is(err, ErrImageChanged) {
				t.Fatalf("Rollback: %v, want ErrImageChanged", err)
			}
			t.Logf("refused: %v", err)
			if hashDir(t, dir) != before || !HasUndo(image) {
				t.Fatal("a refused rollback changed something")
			}
		})
	}
}

func TestIsSidecar(t *testing.T) {
	tests := map[string]bool{
		"win.vhdx.offvm-journal":   true,
		"/lib/win.vhdx.offvm-undo": true,
		"a.qcow2.offvm-rollback":   true,
		".offvm-tmp-123":           true,
		"win.vhdx":                 false,
		"offvm-undo.vhdx":          false,
	}
	for name, want := range tests {
		if IsSidecar(name) != want {
			t.Errorf("IsSidecar(%q) = %v", name, !want)
		}
	}
}

// TestCommitProgress: progress only moves forward and ends at its total.
func TestCommitProgress(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.img")
	old := randomBytes(12, 4<<20)
	rawImage(t, image, old)
	o := rawOverlay(t, image, dir)
	o.WriteAt(randomBytes(13, 3<<20), 1<<20)
	var calls, last int64
	var total int64
	_, err := CommitProgress(image, o, openRaw, func(done, tot int64) {
		if done < last || (total != 0 && tot != total) {
			t.Errorf("progress went from %d to %d/%d (total was %d)", last, done, tot, total)
		}
		calls, last, total = calls+1, done, tot
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 3 || last != total || total < 3<<20 {
		t.Fatalf("%d calls, ended at %d/%d", calls, last, total)
	}
}

// TestCommitApplyFailsUndone: when applying fails half-way (as on a full
// disk), the commit is undone: the image is as before, no journal stays,
// the overlay keeps its changes, and a later commit succeeds.
func TestCommitApplyFailsUndone(t *testing.T) {
	if !FaultsBuilt {
		t.Skip("fault points need go test -tags offvmfault (make test uses it)")
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			target := sc.setup(t, image)
			oldHash := hashDir(t, dir)
			open := openers[sc.format]
			base, err := open(image, vdisk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := NewOverlay(base, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if err := writeTarget(o, target); err != nil {
				t.Fatal(err)
			}
			t.Setenv(FaultEnv, FaultApplyError)
			rearmFaults()
			_, err = Commit(image, o, open)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Commit: %v, want the injected error", err)
			}
			if hashDir(t, dir) != oldHash || len(sidecars(t, dir)) != 0 || !o.Dirty() {
				t.Fatalf("after a failed apply: image changed %v, sidecars %v, dirty %v",
					hashDir(t, dir) != oldHash, sidecars(t, dir), o.Dirty())
			}
			os.Unsetenv(FaultEnv)
			if _, err := Commit(image, o, open); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readVirtual(t, image, sc.format), target) {
				t.Fatal("retried commit did not land")
			}
		})
	}
}
