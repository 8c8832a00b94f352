package txn

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/vdisk"
)

// sealRedoJournal leaves the image as an older offvm's commit, killed
// right after its journal was sealed, left it: a sealed redo journal
// (version 1, the new bytes in it), nothing applied. Recover must still
// replay such a journal, and Rollback undo the record it becomes.
func sealRedoJournal(t testing.TB, image, format string, target []byte) {
	t.Helper()
	open := openers[format]
	base, err := open(image, vdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOverlay(base, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := writeTarget(o, target); err != nil {
		t.Fatal(err)
	}
	s, err := newStager(filepath.Dir(image))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := stageOverlay(image, o, open, s, nil); err != nil {
		t.Fatal(err)
	}
	j, err := createJournal(JournalPath(image), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := journalStaged(j, filepath.Dir(image), s); err != nil {
		t.Fatal(err)
	}
	if err := j.commit(); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(filepath.Dir(image)); err != nil {
		t.Fatal(err)
	}
}

// TestRedoJournalCompat: a sealed redo journal left by an older offvm is
// replayed by Recover (the image holds the commit), becomes an undo record
// holding the new bytes, and Rollback restores the old image from it.
func TestRedoJournalCompat(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			target := sc.setup(t, image)
			old := hashDir(t, dir)
			sealRedoJournal(t, image, sc.format, target)
			if hashDir(t, dir) != old {
				t.Fatal("sealing the journal wrote to the image")
			}
			j, err := verifyJournal(JournalPath(image))
			if err != nil || j.Undo {
				t.Fatalf("the journal is not a sealed redo journal: %v, undo %v", err, j != nil && j.Undo)
			}
			if rec, err := Recover(image); !rec || err != nil {
				t.Fatalf("Recover: %v, %v", rec, err)
			}
			if !bytes.Equal(readVirtual(t, image, sc.format), target) {
				t.Fatal("Recover did not replay the redo journal")
			}
			if !HasUndo(image) || fileExists(JournalPath(image)) {
				t.Fatal("the replayed journal did not become the undo record")
			}
			if err := Rollback(image); err != nil {
				t.Fatal(err)
			}
			if hashDir(t, dir) != old {
				t.Fatal("Rollback of a redo record did not restore the image")
			}
		})
	}
}
