package txn

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzImage is the content Recover is let loose on.
var fuzzImage = bytes.Repeat([]byte("0123456789abcdef"), 16)

// seedJournal builds a sealed journal with journalWriter, an undo journal
// as Commit writes or a redo journal as an older offvm wrote.
func seedJournal(tb testing.TB, undo bool, build func(j *journalWriter) error) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "j")
	j, err := createJournal(path, undo)
	if err != nil {
		tb.Fatal(err)
	}
	if err := build(j); err != nil {
		tb.Fatal(err)
	}
	if err := j.commit(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// seedJournals are redo journals (seeds 0-2: Recover replays them over
// fuzzImage) and undo journals (seeds 3-4: fuzzImage is the state their
// commit left half-way, and Recover undoes it).
func seedJournals(tb testing.TB) [][]byte {
	n := int64(len(fuzzImage))
	return [][]byte{
		seedJournal(tb, false, func(j *journalWriter) error { // grow with one overwrite
			j.file("img", n, n+40, 0)
			j.region(0, 100, []byte("hello"), fuzzImage[100:105])
			return j.region(0, n, bytes.Repeat([]byte{7}, 40), nil)
		}),
		seedJournal(tb, false, func(j *journalWriter) error { // shrink
			j.file("img", n, n-64, 0)
			j.region(0, 0, []byte("XY"), fuzzImage[:2])
			return j.region(0, n-64, nil, fuzzImage[n-64:])
		}),
		seedJournal(tb, false, func(j *journalWriter) error { // two files
			j.file("img", n, n, 0)
			j.file("other", 10, 10, 0)
			j.region(0, 5, []byte{1}, fuzzImage[5:6])
			return j.region(1, 0, []byte("abcdefghij"), []byte("0123456789"))
		}),
		seedJournal(tb, true, func(j *journalWriter) error { // a grow to undo
			j.file("img", n-40, n, 0)
			j.region(0, 100, fuzzImage[100:105], []byte("HELLO"))
			return j.region(0, n-40, fuzzImage[n-40:], nil)
		}),
		seedJournal(tb, true, func(j *journalWriter) error { // two files, zeros
			j.file("img", n, n, 0)
			j.file("other", 10, 10, 0)
			j.region(0, 5, fuzzImage[5:6], []byte{1})
			j.region(0, 16, fuzzImage[16:32], make([]byte, 16))
			return j.region(1, 0, []byte("0123456789"), []byte("abcdefghij"))
		}),
	}
}

// undoSeeds is where the undo journals start in seedJournals.
const undoSeeds = 3

// sealedIndependently checks, without our parser, that jn holds a COMT
// record whose SHA-256 matches everything before it.
func sealedIndependently(jn []byte) bool {
	for p := 0; p+recHeaderSize+comtSize <= len(jn); p++ {
		if string(jn[p:p+4]) != "COMT" {
			continue
		}
		sum := sha256.Sum256(jn[:p])
		if bytes.Equal(sum[:], jn[p+recHeaderSize+20:p+recHeaderSize+comtSize]) {
			return true
		}
	}
	return false
}

// FuzzRecover: Recover on any journal bytes never panics, never writes
// outside the image's directory or creates files, and never changes a
// file unless the journal is sealed by a matching SHA-256.
func FuzzRecover(f *testing.F) {
	syncOff = true
	f.Cleanup(func() { syncOff = false })
	for _, s := range seedJournals(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jn []byte) {
		dir := t.TempDir()
		image := filepath.Join(dir, "img")
		other := filepath.Join(dir, "other")
		os.WriteFile(image, fuzzImage, 0o644)
		os.WriteFile(other, []byte("0123456789"), 0o644)
		os.WriteFile(JournalPath(image), jn, 0o600)
		Recover(image)
		a, _ := os.ReadFile(image)
		b, _ := os.ReadFile(other)
		if (!bytes.Equal(a, fuzzImage) || string(b) != "0123456789") && !sealedIndependently(jn) {
			t.Fatal("Recover applied a journal whose checksum fails")
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !slices.Contains([]string{"img", "other", "img" + UndoSuffix, "img" + JournalSuffix, "img" + HistorySuffix}, e.Name()) {
				t.Fatalf("Recover created %s", e.Name())
			}
		}
	})
}

// FuzzReadJournal drives the journal parser alone, in memory, at the
// speed FuzzRecover's file system work does not allow: it never panics,
// and accepts only journals sealed by a matching SHA-256, whose regions
// all lie inside their files' lengths.
func FuzzReadJournal(f *testing.F) {
	syncOff = true
	f.Cleanup(func() { syncOff = false })
	for _, s := range seedJournals(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jn []byte) {
		var regions []region
		j, err := readJournal(bytes.NewReader(jn), int64(len(jn)), func(r region) error {
			regions = append(regions, r)
			return nil
		})
		if err != nil {
			return
		}
		if !sealedIndependently(jn) {
			t.Fatal("accepted a journal whose checksum fails")
		}
		for _, r := range regions {
			fl := j.Files[r.File]
			if r.Off+int64(len(r.New)) > fl.NewLen && len(r.New) > 0 || r.Off+int64(len(r.Old)) > fl.OldLen && len(r.Old) > 0 {
				t.Fatalf("region at %d outside file %+v", r.Off, fl)
			}
		}
		if int64(len(regions)) != j.Regions {
			t.Fatalf("%d regions, journal says %d", len(regions), j.Regions)
		}
	})
}

// TestSeedJournalsApply: the seeds are real journals Recover applies, so
// the fuzzer starts from the interesting side of the checksum.
func TestSeedJournalsApply(t *testing.T) {
	for i, jn := range seedJournals(t) {
		dir := t.TempDir()
		image := filepath.Join(dir, "img")
		os.WriteFile(image, fuzzImage, 0o644)
		os.WriteFile(filepath.Join(dir, "other"), []byte("0123456789"), 0o644)
		os.WriteFile(JournalPath(image), jn, 0o600)
		if rec, err := Recover(image); !rec || err != nil {
			t.Fatalf("seed %d: Recover %v, %v", i, rec, err)
		}
		if a, _ := os.ReadFile(image); bytes.Equal(a, fuzzImage) {
			t.Fatalf("seed %d: image unchanged", i)
		}
		if i >= undoSeeds {
			// undone: the commit never happened, there is nothing to roll back
			if fileExists(JournalPath(image)) || fileExists(UndoPath(image)) {
				t.Fatalf("seed %d: a journal or undo record is left after undoing", i)
			}
			if err := Rollback(image); !errors.Is(err, ErrNoUndo) {
				t.Fatalf("seed %d: Rollback after an undone commit: %v, want ErrNoUndo", i, err)
			}
			continue
		}
		if err := Rollback(image); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if a, _ := os.ReadFile(image); !bytes.Equal(a, fuzzImage) {
			t.Fatalf("seed %d: rollback did not restore the image", i)
		}
	}
	if os.Getenv("TXN_WRITE_SEEDS") != "" {
		writeSeeds(t, seedJournals(t))
	}
}

// writeSeeds stores the seeds in go's fuzz corpus format.
func writeSeeds(t *testing.T, seeds [][]byte) {
	for _, target := range []string{"FuzzRecover", "FuzzReadJournal"} {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
