//go:build offvmfault && !race

package txn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotTree is snapshotDir with the image's history directory: its
// files are in the model as "disk.img.offvm-history/NAME".
func snapshotTree(t *testing.T, dir string) model {
	t.Helper()
	m := snapshotDir(t, dir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		for name, f := range snapshotDir(t, filepath.Join(dir, e.Name())) {
			m[e.Name()+"/"+name] = f
		}
	}
	return m
}

// materializeTree is materialize for a model with subdirectories.
func materializeTree(t *testing.T, dir string, m model) {
	t.Helper()
	flat, subs := model{}, map[string]model{}
	for name, f := range m {
		sub, base, ok := strings.Cut(name, "/")
		if !ok {
			flat[name] = f
			continue
		}
		if subs[sub] == nil {
			subs[sub] = model{}
		}
		subs[sub][base] = f
	}
	materialize(t, dir, flat)
	for sub, sm := range subs {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		materialize(t, filepath.Join(dir, sub), sm)
	}
}

// guestHash hashes the image's own files: no sidecar, nothing in the
// history directory.
func (m model) guestHash() [32]byte {
	g := model{}
	for n, f := range m {
		if !strings.Contains(n, "/") {
			g[n] = f
		}
	}
	return g.imageHash()
}

// TestCrashStatesHistoryRollbackTo explores every crash state of a rollback --to
// over three commits (the image files, the undo records, the plan and
// the manifests): each must recover to the image before rollback (and
// then still roll back to the first state) or to the first state.
func TestCrashStatesHistoryRollbackTo(t *testing.T) {
	f := newHistoryFixture(t, "tfmt")
	image := f.image()
	start := snapshotTree(t, f.dir)
	ops := recordOps(t, f.dir, func() error { _, err := RollbackTo(image, 1); return err })
	end := snapshotTree(t, f.dir)
	replayed := start.clone()
	for _, op := range ops {
		replayed.apply(op, 0)
	}
	for name, ef := range end {
		if r := replayed[name]; r == nil || !bytes.Equal(r.data, ef.data) {
			t.Fatalf("replaying the %d traced operations does not give %s: the trace misses a write", len(ops), name)
		}
	}
	oldH, newH := start.guestHash(), end.guestHash()
	if hashDir(t, f.dir) != f.states[0] || oldH == newH {
		t.Fatal("rollback --to 1 did not give the first state")
	}
	stateDir := filepath.Join(shmDir(t), "state")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(stateDir, 0o755))
	rng := rand.New(rand.NewPCG(uint64(len(ops)), 3))
	seen := map[[32]byte]bool{}
	var states, distinct, old, rolled int
	img := filepath.Join(stateDir, filepath.Base(image))
	for k := 0; k <= len(ops); k++ {
		crashStates(start, ops, k, rng, func(m model, what string) {
			states++
			if key := m.stateKey(); seen[key] {
				return
			} else {
				seen[key] = true
			}
			distinct++
			materializeTree(t, stateDir, m)
			if _, err := Recover(img); err != nil {
				t.Fatalf("%s: Recover: %v", what, err)
			}
			if again, err := Recover(img); again || err != nil {
				t.Fatalf("%s: a second Recover still had work (%v, %v)", what, again, err)
			}
			switch snapshotTree(t, stateDir).guestHash() {
			case oldH:
				old++
				// the history must be whole still: the rollback can be run again
				if distinct%7 == 1 {
					if _, err := RollbackTo(img, 1); err != nil {
						t.Fatalf("%s: recovered to before the rollback, but rolling back again fails: %v", what, err)
					}
					if snapshotTree(t, stateDir).guestHash() != newH {
						t.Fatalf("%s: rolling back again gave another image", what)
					}
				}
			case newH:
				rolled++
			default:
				t.Fatalf("%s: after Recover the image is neither as before the rollback nor the first state", what)
			}
		})
	}
	t.Logf("rollback --to over 3 commits: %d operations, %d crash states, %d distinct: %d recovered to before, %d rolled back", len(ops), states, distinct, old, rolled)
	if old == 0 || rolled == 0 {
		t.Errorf("old %d, rolled back %d: the explorer missed the commit point", old, rolled)
	}
}

// TestCrashStatesHistoryCommit explores a fourth commit onto an image
// with a history (its guest changes go into a pending record before the
// apply, the previous undo record moves into the history, a manifest is
// written): each state recovers to old or new, and from either the
// history still rolls the image back to the state before the first
// commit. Recovered to new, the fourth commit's record is the one made
// at commit time (its note and changes) or says it was finished by
// recovery; recovered to old, no record names it, and a fifth commit
// gets its own record, never the leftover one.
func TestCrashStatesHistoryCommit(t *testing.T) {
	withDiffer(t, blockDiffer)
	f := newHistoryFixture(t, "raw")
	image := f.image()
	prev := readVirtual(t, image, "raw")
	next := append([]byte(nil), prev...)
	copy(next[30*BlockSize:], randomBytes(99, 2*BlockSize))
	wantBlocks, _ := json.Marshal(diffBlocks(prev, next))
	SetCommitNote(Note{Command: "fourth"})
	start := snapshotTree(t, f.dir)
	ops := recordOps(t, f.dir, func() error { _, err := commitTarget(image, "raw", next); return err })
	end := snapshotTree(t, f.dir)
	oldH, newH := start.guestHash(), end.guestHash()
	stateDir := filepath.Join(shmDir(t), "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(len(ops)), 5))
	seen := map[[32]byte]bool{}
	var distinct, old, nw, recorded, recovered int
	img := filepath.Join(stateDir, filepath.Base(image))
	for k := 0; k <= len(ops); k++ {
		crashStates(start, ops, k, rng, func(m model, what string) {
			if key := m.stateKey(); seen[key] {
				return
			} else {
				seen[key] = true
			}
			distinct++
			materializeTree(t, stateDir, m)
			if _, err := Recover(img); err != nil {
				t.Fatalf("%s: Recover: %v", what, err)
			}
			cs, err := History(img)
			if err != nil {
				t.Fatalf("%s: history: %v", what, err)
			}
			switch snapshotTree(t, stateDir).guestHash() {
			case oldH:
				old++
				if len(cs) != 3 {
					t.Fatalf("%s: recovered to old, the history has %d commits", what, len(cs))
				}
				if distinct%5 == 3 {
					fifthCommit(t, what, img, prev)
					return
				}
			case newH:
				nw++
				c := cs[0]
				switch {
				case len(cs) != 4 || c.ID != 4 || !c.CanUndo:
					t.Fatalf("%s: recovered to new, the history is %+v", what, cs)
				case c.Note.Command == "fourth" && sameJSON(c.Changes, wantBlocks) && c.GuestUnknown == "":
					recorded++
				case c.Note.Command == "unknown" && strings.Contains(c.GuestUnknown, "recovery") && c.Changes == nil:
					recovered++
				default:
					t.Fatalf("%s: the fourth commit's record: note %+v, changes %s, unknown %q", what, c.Note, c.Changes, c.GuestUnknown)
				}
			default:
				t.Fatalf("%s: after Recover the image is neither old nor new", what)
			}
			if distinct%5 == 1 {
				if _, err := RollbackTo(img, 1); err != nil {
					t.Fatalf("%s: rollback --to 1 after recovery: %v", what, err)
				}
				if hashDir(t, stateDir) != f.states[0] {
					t.Fatalf("%s: rollback --to 1 after recovery gave another image", what)
				}
			}
		})
	}
	t.Logf("fourth commit: %d operations, %d distinct crash states: %d old, %d new (%d with the record made at commit time, %d finished by recovery without it)",
		len(ops), distinct, old, nw, recorded, recovered)
	if old == 0 || nw == 0 || recorded == 0 {
		t.Errorf("old %d, new %d, recorded %d: the explorer missed the commit point or the record", old, nw, recorded)
	}
}

// fifthCommit commits other blocks onto a state recovered to old and
// checks that the commit's record is its own, not a pending one left by
// the commit the crash undid.
func fifthCommit(t *testing.T, what, img string, prev []byte) {
	t.Helper()
	SetCommitNote(Note{Command: "fifth"})
	defer SetCommitNote(Note{Command: "fourth"})
	next := append([]byte(nil), prev...)
	copy(next[40*BlockSize:], randomBytes(77, BlockSize))
	if _, err := commitTarget(img, "raw", next); err != nil {
		t.Fatalf("%s: a fifth commit after recovering to old: %v", what, err)
	}
	cs, err := History(img)
	want, _ := json.Marshal(diffBlocks(prev, next))
	if err != nil || len(cs) != 4 || cs[0].Note.Command != "fifth" || !sameJSON(cs[0].Changes, want) {
		t.Fatalf("%s: after a fifth commit the newest record is %+v (%v)", what, cs[0], err)
	}
}

// sameJSON compares two JSON texts by what they say (a manifest is
// written indented).
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}
