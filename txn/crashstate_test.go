//go:build offvmfault && !race

package txn

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

// The crash-state explorer, after ALICE (Pillai et al., OSDI 2014) and
// CrashMonkey (Mohan et al., OSDI 2018), and SQLite's crash tests: record
// every durable-state operation a commit makes on its host files (writes,
// truncates, fsyncs, creates, renames, removes, directory syncs); then,
// for each prefix of that sequence (a power loss after it), build every
// state the disk may hold and run Recover on it. A write or truncate of a
// file not followed, within the prefix, by an fsync of that file may or
// may not have reached the disk: each subset of those is a state. A
// create, rename or remove not followed by a sync of the directory may be
// lost, newest first (file systems journal their metadata in order). A
// file's mtime is the one it had at its last fsync, or a newer one when a
// write after it is in the state.
//
// Every state must recover to exactly the old files or exactly the new
// ones. (Not under -race: it recovers thousands of states, and the race
// detector would make that take minutes; make test runs it without.)

// modelFile is one host file of a modelled state.
type modelFile struct {
	data    []byte
	mtimeNs int64
}

type model map[string]*modelFile // by path relative to the image's directory

func (m model) clone() model {
	c := make(model, len(m))
	for k, f := range m {
		c[k] = &modelFile{data: bytes.Clone(f.data), mtimeNs: f.mtimeNs}
	}
	return c
}

// snapshotDir reads the regular files of dir into a model.
func snapshotDir(t *testing.T, dir string) model {
	t.Helper()
	m := model{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &modelFile{data: b, mtimeNs: fi.ModTime().UnixNano()}
	}
	return m
}

// imageHash hashes the files that are not sidecars: the image's state.
func (m model) imageHash() [32]byte {
	names := make([]string, 0, len(m))
	for n := range m {
		if !IsSidecar(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(m[n].data))
		h.Write(m[n].data)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// stateKey tells distinct states apart: every file's content, and the
// mtimes recovery compares.
func (m model) stateKey() [32]byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(m[n].data))
		binary.Write(h, binary.LittleEndian, m[n].mtimeNs)
		h.Write(m[n].data)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// recorded is a traced operation with its path made relative.
type recorded struct {
	traceOp
	rel, newRel string
}

func (r recorded) isData() bool { return r.Kind == "write" || r.Kind == "truncate" }
func (r recorded) isDir() bool {
	return r.Kind == "create" || r.Kind == "rename" || r.Kind == "remove"
}

// apply applies one operation to m; a data operation on a file the state
// does not hold (its create was lost) does nothing.
func (m model) apply(op recorded, dirtyMtime int64) {
	switch op.Kind {
	case "create":
		m[op.rel] = &modelFile{mtimeNs: dirtyMtime}
	case "write":
		f := m[op.rel]
		if f == nil {
			return
		}
		if end := op.Off + int64(len(op.Data)); end > int64(len(f.data)) {
			f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
		}
		copy(f.data[op.Off:], op.Data)
		f.mtimeNs = dirtyMtime
	case "truncate":
		f := m[op.rel]
		if f == nil {
			return
		}
		if op.Size <= int64(len(f.data)) {
			f.data = f.data[:op.Size]
		} else {
			f.data = append(f.data, make([]byte, op.Size-int64(len(f.data)))...)
		}
		f.mtimeNs = dirtyMtime
	case "fsync":
		if f := m[op.rel]; f != nil {
			f.mtimeNs = op.MtimeNs
		}
	case "rename":
		if f := m[op.rel]; f != nil {
			delete(m, op.rel)
			m[op.newRel] = f
		}
	case "remove":
		delete(m, op.rel)
	}
}

// recordOps runs fn with the trace hook set and returns what it did to
// the files of dir.
func recordOps(t *testing.T, dir string, fn func() error) []recorded {
	t.Helper()
	var ops []recorded
	traceHook = func(op traceOp) {
		r := recorded{traceOp: op}
		rel := func(p string) string {
			if p == dir {
				return "."
			}
			s, err := filepath.Rel(dir, p)
			if err != nil {
				t.Errorf("traced %s outside %s", p, dir)
			}
			return s
		}
		r.rel = rel(op.Path)
		if op.NewPath != "" {
			r.newRel = rel(op.NewPath)
		}
		// a write reaches the disk page by page: a torn one is some of
		// its pages, so each page is an operation of its own
		for r.Kind == "write" && len(r.Data) > pageSize {
			n := pageSize - int(r.Off%pageSize)
			piece := r
			piece.Data = r.Data[:n]
			ops = append(ops, piece)
			r.Data, r.Off = r.Data[n:], r.Off+int64(n)
		}
		ops = append(ops, r)
	}
	defer func() { traceHook = nil }()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return ops
}

// crashStates builds every state a power loss after the first k
// operations may leave, calling visit with each and a description.
func crashStates(start model, ops []recorded, k int, rng *rand.Rand, visit func(model, string)) {
	// a write is durable once its file is fsynced later in the prefix; a
	// directory operation once the directory is
	var pendingData, pendingDir []int
	for i := 0; i < k; i++ {
		op := ops[i]
		synced := false
		for j := i + 1; j < k && !synced; j++ {
			switch {
			case op.isData() && ops[j].Kind == "fsync" && ops[j].rel == op.rel:
				synced = true
			case op.isDir() && ops[j].Kind == "syncdir":
				synced = true
			}
		}
		switch {
		case synced:
		case op.isData():
			pendingData = append(pendingData, i)
		case op.isDir():
			pendingDir = append(pendingDir, i)
		}
	}
	dirty := time.Now().UnixNano() // any mtime no fsync recorded
	for _, subset := range dataSubsets(len(pendingData), rng) {
		dropped := map[int]bool{}
		for bit, i := range pendingData {
			if subset&(1<<bit) == 0 && bit < 63 {
				dropped[i] = true
			}
		}
		for keepDir := len(pendingDir); keepDir >= 0; keepDir-- {
			for _, i := range pendingDir[keepDir:] {
				dropped[i] = true
			}
			m := start.clone()
			for i := 0; i < k; i++ {
				if !dropped[i] {
					m.apply(ops[i], dirty)
				}
			}
			visit(m, fmt.Sprintf("crash after op %d/%d (%s %s), %d of %d unsynced writes kept (mask %#x), %d of %d unsynced directory ops kept",
				k, len(ops), opName(ops, k), opPath(ops, k), popcount(subset, len(pendingData)), len(pendingData), subset, keepDir, len(pendingDir)))
			for _, i := range pendingDir[keepDir:] {
				delete(dropped, i)
			}
		}
	}
}

func opName(ops []recorded, k int) string {
	if k == 0 {
		return "start"
	}
	return ops[k-1].Kind
}

func opPath(ops []recorded, k int) string {
	if k == 0 {
		return ""
	}
	return ops[k-1].rel
}

func popcount(mask uint64, n int) int {
	c := 0
	for i := 0; i < n && i < 64; i++ {
		if mask&(1<<i) != 0 {
			c++
		}
	}
	return c
}

// dataSubsets lists which of n unsynced writes reach the disk: all 2^n
// subsets for small n; for larger n none, all, the oldest k (the disk
// wrote in order and stopped), one alone and all but one (for a few
// spread positions: the disk reordered), and random subsets.
func dataSubsets(n int, rng *rand.Rand) []uint64 {
	if n <= 6 {
		out := make([]uint64, 0, 1<<n)
		for m := uint64(0); m < 1<<n; m++ {
			out = append(out, m)
		}
		return out
	}
	bits := min(n, 63)
	all := uint64(1)<<bits - 1
	out := []uint64{0, all}
	const spread = 6
	for s := range spread {
		i := s * (bits - 1) / (spread - 1)
		out = append(out, 1<<i, all&^(1<<i), uint64(1)<<i-1)
	}
	for range 6 {
		out = append(out, rng.Uint64()&all)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// materialize writes m into dir, which it empties first.
func materialize(t *testing.T, dir string, m model) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	for name, f := range m {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(0, f.mtimeNs)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// explorerResult counts what exploring one commit found.
type explorerResult struct {
	ops, states, distinct, old, new int
}

// exploreCommit records commit (which changes the image in dir, and its
// history directory: history_crashstate_test.go), checks
// that replaying the record gives exactly the files the commit left, then
// recovers every crash state and checks it is old or new. check, when not
// nil, is called on some recovered states with their image path (a real
// tool's check).
func exploreCommit(t *testing.T, dir, image string, commit func() error, check func(image string)) explorerResult {
	t.Helper()
	start := snapshotTree(t, dir)
	ops := recordOps(t, dir, commit)
	end := snapshotTree(t, dir)
	replayed := start.clone()
	for _, op := range ops {
		replayed.apply(op, 0)
	}
	for name, f := range end {
		if r := replayed[name]; r == nil || !bytes.Equal(r.data, f.data) {
			t.Fatalf("replaying the %d traced operations does not give %s as the commit left it: the trace misses a write", len(ops), name)
		}
	}
	if len(replayed) != len(end) {
		t.Fatalf("replaying the trace gives %d files, the commit left %d", len(replayed), len(end))
	}
	oldH, newH := start.guestHash(), end.guestHash()
	if oldH == newH {
		t.Fatal("the commit changed nothing: nothing to explore")
	}
	res := explorerResult{ops: len(ops)}
	seen := map[[32]byte]bool{}
	stateDir := filepath.Join(shmDir(t), "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(len(ops)), 1))
	name := filepath.Base(image)
	for k := 0; k <= len(ops); k++ {
		crashStates(start, ops, k, rng, func(m model, what string) {
			res.states++
			key := m.stateKey()
			if seen[key] {
				return
			}
			seen[key] = true
			res.distinct++
			materializeTree(t, stateDir, m)
			img := filepath.Join(stateDir, name)
			if _, err := Recover(img); err != nil {
				t.Fatalf("%s: Recover: %v", what, err)
			}
			if again, err := Recover(img); again || err != nil {
				t.Fatalf("%s: a second Recover still had work (%v, %v)", what, again, err)
			}
			switch snapshotTree(t, stateDir).guestHash() {
			case oldH:
				res.old++
			case newH:
				res.new++
			default:
				t.Fatalf("%s: after Recover the image is neither old nor new", what)
			}
			if check != nil && res.distinct%97 == 1 {
				check(img)
			}
		})
	}
	return res
}

// shmDir is a temporary directory in memory when the machine has one:
// thousands of states are written and read back.
func shmDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "offvm-crashstates-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// TestCrashStates explores every crash state of commits to the raw
// format and to the test format (whose files grow and whose table moves),
// and of a rollback.
func TestCrashStates(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			target := sc.setup(t, image)
			res := exploreCommit(t, dir, image, func() error {
				_, err := commitTarget(image, sc.format, target)
				return err
			}, nil)
			t.Logf("commit: %d operations, %d crash states, %d distinct: %d recovered old, %d new", res.ops, res.states, res.distinct, res.old, res.new)
			if res.old == 0 || res.new == 0 {
				t.Errorf("no state recovered to old (%d) or none to new (%d): the explorer missed the commit point", res.old, res.new)
			}
			rb := exploreCommit(t, dir, image, func() error { return Rollback(image) }, nil)
			t.Logf("rollback: %d operations, %d crash states, %d distinct: %d recovered to the committed image, %d rolled back", rb.ops, rb.states, rb.distinct, rb.old, rb.new)
		})
	}
}
