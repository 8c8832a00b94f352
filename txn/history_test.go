package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// historyChild is the crash tests' child that runs RollbackTo.
func historyChild(image string) error {
	id, err := strconv.Atoi(os.Getenv("TXN_TARGET"))
	if err != nil {
		return err
	}
	fmt.Println("READY")
	_, err = RollbackTo(image, id)
	return err
}

// historyFixture is an image after three commits, with the hash of every
// state: states[0] before the first commit, states[3] after the third.
type historyFixture struct {
	dir    string
	format string
	states []string
}

func newHistoryFixture(t *testing.T, format string) *historyFixture {
	t.Helper()
	f := &historyFixture{dir: t.TempDir(), format: format}
	image := f.image()
	const size = 48 * BlockSize
	data := randomBytes(1, size)
	switch format {
	case "raw":
		rawImage(t, image, data)
	case "tfmt":
		tfmtImage(t, image, size, data[:8*BlockSize])
	}
	SetCommitNote(Note{Command: "test", Bundle: "b-" + format})
	f.states = append(f.states, hashDir(t, f.dir))
	cur := readVirtual(t, image, format)
	for i := 1; i <= 3; i++ {
		// each commit changes some blocks of its own and one the others change too
		next := append([]byte(nil), cur...)
		copy(next[i*10*BlockSize:], randomBytes(uint64(10+i), 3*BlockSize+17))
		copy(next[2*BlockSize:], randomBytes(uint64(20+i), BlockSize))
		if _, err := commitTarget(image, format, next); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		f.states = append(f.states, hashDir(t, f.dir))
		cur = next
	}
	return f
}

func (f *historyFixture) image() string { return filepath.Join(f.dir, "disk.img") }

// copyTree copies the fixture's directory with its history, keeping the
// images' mtimes (the undo record checks them).
func (f *historyFixture) copyTree(t *testing.T) string {
	t.Helper()
	dst := copyDir(t, f.dir)
	ents, _ := os.ReadDir(f.dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			os.Chtimes(filepath.Join(dst, e.Name()), fi.ModTime(), fi.ModTime())
		}
	}
	h := HistoryDir(f.image())
	if err := os.Mkdir(HistoryDir(filepath.Join(dst, "disk.img")), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(h)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(h, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(HistoryDir(filepath.Join(dst, "disk.img")), e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestHistoryLog(t *testing.T) {
	f := newHistoryFixture(t, "tfmt")
	cs, err := History(f.image())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("history has %d commits, want 3", len(cs))
	}
	for i, c := range cs {
		if c.ID != 3-i || c.State != "undoable" || c.Note.Command != "test" || c.Note.Bundle != "b-tfmt" {
			t.Errorf("commit %d: id %d state %q note %+v", i, c.ID, c.State, c.Note)
		}
		if c.Bytes < 3*BlockSize || len(c.Files) == 0 {
			t.Errorf("commit %d: %d bytes in %d files", c.ID, c.Bytes, len(c.Files))
		}
	}
	if cs[0].record != UndoPath(f.image()) || cs[1].record != archivedPath(f.image(), 2) {
		t.Errorf("records at %q, %q", cs[0].record, cs[1].record)
	}
}

func TestHistoryRollbackTo(t *testing.T) {
	for _, format := range []string{"raw", "tfmt"} {
		f := newHistoryFixture(t, format)
		for _, to := range []int{3, 2, 1} {
			t.Run(fmt.Sprintf("%s to %d", format, to), func(t *testing.T) {
				dir := f.copyTree(t)
				image := filepath.Join(dir, "disk.img")
				ids, err := RollbackTo(image, to)
				if err != nil {
					t.Fatal(err)
				}
				if len(ids) != 4-to {
					t.Errorf("undid %v", ids)
				}
				if h := hashDir(t, dir); h != f.states[to-1] {
					t.Fatalf("after rollback --to %d the image is not the state before commit %d", to, to)
				}
				cs, _ := History(image)
				for _, c := range cs {
					if (c.ID >= to) != (c.State == "rolled back") {
						t.Errorf("commit %d is %q", c.ID, c.State)
					}
				}
				if _, err := os.Stat(planPath(image)); !os.IsNotExist(err) {
					t.Errorf("plan left behind: %v", err)
				}
			})
		}
	}
	t.Run("step by step", func(t *testing.T) {
		f := newHistoryFixture(t, "tfmt")
		dir := f.copyTree(t)
		image := filepath.Join(dir, "disk.img")
		if err := Rollback(image); err != nil { // the plain one, then the history
			t.Fatal(err)
		}
		for _, to := range []int{2, 1} {
			if _, err := RollbackTo(image, to); err != nil {
				t.Fatal(err)
			}
			if hashDir(t, dir) != f.states[to-1] {
				t.Fatalf("rollback --to %d after a plain rollback: wrong state", to)
			}
		}
		// and a new commit after that gets a new id and can be undone
		cur := readVirtual(t, image, "tfmt")
		cur[5] ^= 0xff
		if _, err := commitTarget(image, "tfmt", cur); err != nil {
			t.Fatal(err)
		}
		cs, _ := History(image)
		if cs[0].ID != 4 || cs[0].State != "undoable" {
			t.Fatalf("new commit is %d %q", cs[0].ID, cs[0].State)
		}
		if _, err := RollbackTo(image, 4); err != nil || hashDir(t, dir) != f.states[0] {
			t.Fatalf("rollback of the new commit: %v", err)
		}
	})
}

func TestHistoryRollbackToRefuses(t *testing.T) {
	f := newHistoryFixture(t, "raw")
	cases := []struct {
		name string
		mess func(t *testing.T, image string)
		to   int
		want error
	}{
		{"changed outside offvm", func(t *testing.T, image string) {
			cur := readVirtual(t, image, "raw")
			cur[11*BlockSize] ^= 1
			directWrite(t, image, "raw", cur)
		}, 1, ErrImageChanged},
		{"record dropped", func(t *testing.T, image string) {
			if err := SetKeep(image, 2); err != nil {
				t.Fatal(err)
			}
		}, 1, ErrHistoryMissing},
		{"record deleted", func(t *testing.T, image string) {
			os.Remove(archivedPath(image, 2))
		}, 2, ErrHistoryMissing},
		{"no such commit", func(t *testing.T, image string) {}, 9, ErrNoUndo},
		{"chain broken", func(t *testing.T, image string) {
			// commit 2's record swapped for commit 1's: lengths match (raw), bytes
			// would not, but the seal ties the manifest to its record
			b, _ := os.ReadFile(archivedPath(image, 1))
			os.WriteFile(archivedPath(image, 2), b, 0o644)
		}, 1, ErrHistoryMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := f.copyTree(t)
			image := filepath.Join(dir, "disk.img")
			tc.mess(t, image)
			before := hashDir(t, dir)
			_, err := RollbackTo(image, tc.to)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if hashDir(t, dir) != before {
				t.Fatal("a refused rollback wrote to the image")
			}
		})
	}
}

func TestHistoryKeep(t *testing.T) {
	f := newHistoryFixture(t, "raw")
	image := f.image()
	if err := SetKeep(image, 2); err != nil {
		t.Fatal(err)
	}
	cs, _ := History(image)
	want := map[int]string{3: "undoable", 2: "undoable", 1: "record dropped"}
	for _, c := range cs {
		if c.State != want[c.ID] {
			t.Errorf("commit %d is %q, want %q", c.ID, c.State, want[c.ID])
		}
	}
	if KeepOf(image) != 2 {
		t.Errorf("keep is %d", KeepOf(image))
	}
}

// TestHistoryRollbackToCrash kills RollbackTo at each of its fault points
// and checks that Recover then gives exactly the target state.
func TestHistoryRollbackToCrash(t *testing.T) {
	f := newHistoryFixture(t, "tfmt")
	for _, pt := range RollbackToFaults {
		t.Run(pt, func(t *testing.T) {
			dir := f.copyTree(t)
			image := filepath.Join(dir, "disk.img")
			c := startChild(t, "rollback-to", image, "tfmt", "1", pt)
			if !c.wait(t) {
				t.Fatalf("child passed fault point %s alive", pt)
			}
			if h := hashDir(t, dir); h == f.states[0] && pt == FaultRollbackToPlanned {
				t.Fatal("image already rolled back at the first fault point")
			}
			recovered, err := Recover(image)
			if err != nil || !recovered {
				t.Fatalf("Recover: %v, %v", recovered, err)
			}
			if hashDir(t, dir) != f.states[0] {
				t.Fatal("after the crash and Recover the image is not the state before commit 1")
			}
			if _, err := os.Stat(planPath(image)); !os.IsNotExist(err) {
				t.Errorf("plan left behind")
			}
		})
	}
}

// TestHistoryParallel reads the history while commits and rollbacks run
// (go test -race): readers never see an error or a torn manifest.
func TestHistoryParallel(t *testing.T) {
	f := newHistoryFixture(t, "raw")
	image := f.image()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := History(image); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	cur := readVirtual(t, image, "raw")
	for i := range 4 {
		cur[i*BlockSize] ^= 0x5a
		if _, err := commitTarget(image, "raw", cur); err != nil {
			t.Fatal(err)
		}
	}
	// seven commits, five kept: 3 is the oldest that can be undone
	if _, err := RollbackTo(image, 2); !errors.Is(err, ErrHistoryMissing) {
		t.Errorf("rollback --to 2 past --keep: %v", err)
	}
	if _, err := RollbackTo(image, 3); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if hashDir(t, f.dir) != f.states[2] {
		t.Fatal("rollback --to 3 after parallel reads: wrong state")
	}
}

// TestHistoryForeignChangeBetween: a write outside offvm between two
// commits, over bytes the first one wrote, makes rollback --to the first
// refuse (lengths and the newest commit's bytes are all in order), while
// the second can still be undone.
func TestHistoryForeignChangeBetween(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.img")
	rawImage(t, image, randomBytes(3, 32*BlockSize))
	cur := readVirtual(t, image, "raw")
	copy(cur[4*BlockSize:], randomBytes(4, BlockSize))
	if _, err := commitTarget(image, "raw", cur); err != nil {
		t.Fatal(err)
	}
	cur[4*BlockSize+9] ^= 0xff // outside offvm, over commit 1's bytes
	directWrite(t, image, "raw", cur)
	between := hashDir(t, dir)
	copy(cur[20*BlockSize:], randomBytes(5, BlockSize))
	if _, err := commitTarget(image, "raw", cur); err != nil {
		t.Fatal(err)
	}
	before := hashDir(t, dir)
	if _, err := RollbackTo(image, 1); !errors.Is(err, ErrImageChanged) {
		t.Fatalf("rollback --to 1 over a foreign change: %v", err)
	}
	if hashDir(t, dir) != before {
		t.Fatal("the refused rollback wrote")
	}
	if _, err := RollbackTo(image, 2); err != nil || hashDir(t, dir) != between {
		t.Fatalf("rollback --to 2: %v", err)
	}
}
