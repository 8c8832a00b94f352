package txn

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecoverRules: Recover never writes a journal's bytes over newer
// ones. An applied journal (APLD) only becomes the undo record, and only
// while the files are as it recorded; a sealed journal is undone only
// when the files' lengths are ones its apply can leave, and then the
// image is the old one, with no journal and no undo record left.
func TestRecoverRules(t *testing.T) {
	cases := []struct {
		name    string
		applied bool                                  // keep the APLD mark
		tamper  func(t *testing.T, image string)      // what changed the image since
		refused bool                                  // Recover must refuse
		state   func(t *testing.T, image, old string) // extra expectations
		undone  bool                                  // Recover must undo the commit
	}{
		{"applied, untouched", true, nil, false, nil, false},
		{"applied, then rewritten in place", true, func(t *testing.T, image string) {
			f, err := os.OpenFile(image, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("NEWER"), 100); err != nil {
				t.Fatal(err)
			}
		}, true, nil, false},
		{"applied, then touched", true, func(t *testing.T, image string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(image, later, later); err != nil {
				t.Fatal(err)
			}
		}, true, nil, false},
		{"sealed, length outside the journal's range", false, func(t *testing.T, image string) {
			f, err := os.OpenFile(image, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, 8192)); err != nil {
				t.Fatal(err)
			}
		}, true, nil, false},
		{"sealed, not marked applied", false, nil, false, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			target := scenarios[0].setup(t, image)
			oldHash := hashDir(t, dir)
			oldFi, _ := os.Stat(image)
			if _, err := commitTarget(image, "raw", target); err != nil {
				t.Fatal(err)
			}
			// the undo record is the journal as it was just before its
			// rename: bring that state back
			if err := os.Rename(UndoPath(image), JournalPath(image)); err != nil {
				t.Fatal(err)
			}
			if !c.applied {
				j, err := verifyJournal(JournalPath(image))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(JournalPath(image), j.CommitEnd); err != nil {
					t.Fatal(err)
				}
			}
			if c.tamper != nil {
				c.tamper(t, image)
			}
			before := hashDir(t, dir)
			fi0, _ := os.Stat(image)
			_, err := Recover(image)
			fi1, _ := os.Stat(image)
			if c.refused {
				if !errors.Is(err, ErrRecoverRefused) {
					t.Fatalf("Recover: %v, want ErrRecoverRefused", err)
				}
				if hashDir(t, dir) != before || !fi1.ModTime().Equal(fi0.ModTime()) {
					t.Fatal("a refused recovery wrote to the image or its journal")
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.undone {
				if fileExists(JournalPath(image)) || HasUndo(image) || hashDir(t, dir) != oldHash {
					t.Fatalf("after Recover: journal %v, undo %v, image old %v", fileExists(JournalPath(image)), HasUndo(image), hashDir(t, dir) == oldHash)
				}
				if !fi1.ModTime().Equal(oldFi.ModTime()) {
					t.Fatalf("undoing left the image's mtime at %v, it was %v before the commit", fi1.ModTime(), oldFi.ModTime())
				}
				return
			}
			if fileExists(JournalPath(image)) || !HasUndo(image) {
				t.Fatalf("after Recover: journal %v, undo %v", fileExists(JournalPath(image)), HasUndo(image))
			}
			if c.applied && !fi1.ModTime().Equal(fi0.ModTime()) {
				t.Fatal("Recover rewrote an image whose journal was already applied")
			}
			if got := readVirtual(t, image, "raw"); string(got) != string(target) {
				t.Fatal("image does not hold the commit after Recover")
			}
			if err := Rollback(image); err != nil {
				t.Fatalf("Rollback after Recover: %v", err)
			}
		})
	}
}
