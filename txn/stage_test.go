package txn

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fileOp is a write (data != nil) or a truncate.
type fileOp struct {
	off  int64
	data []byte
}

func wr(off int64, s string) fileOp { return fileOp{off, []byte(s)} }

// pages is n pages of random bytes, as a string for wr.
func pages(seed uint64, n int) string { return string(randomBytes(seed, n*pageSize)) }
func tr(n int64) fileOp               { return fileOp{off: n} }

// TestStagedOps runs sequences of writes and truncates through the stager,
// journal and apply, and checks the result against the same operations
// done by the kernel on a plain file; Rollback must give the original.
func TestStagedOps(t *testing.T) {
	orig := randomBytes(60, 3*pageSize+123)
	tests := []struct {
		name string
		ops  []fileOp
	}{
		{"overwrite inside", []fileOp{wr(10, "hello"), wr(pageSize-2, "across")}},
		{"append past end", []fileOp{wr(int64(len(orig))+5000, "tail")}},
		{"shrink", []fileOp{tr(pageSize + 7)}},
		{"shrink to zero", []fileOp{tr(0)}},
		{"shrink then regrow with a hole", []fileOp{tr(100), wr(2*pageSize+50, "regrown")}},
		{"shrink then truncate up", []fileOp{tr(pageSize / 2), tr(int64(len(orig)) + 10)}},
		{"write then cut through it", []fileOp{wr(pageSize, "xxxxxxxxxx"), tr(pageSize + 3), wr(pageSize+8, "yy")}},
		{"grow by truncate only", []fileOp{tr(10 * pageSize)}},
		{"identical bytes", []fileOp{wr(200, string(orig[200:300]))}},
		// whole-page runs: staged in one spill write, read back in one
		{"whole pages, fresh", []fileOp{wr(0, pages(61, 3))}},
		{"whole pages over staged ones out of order", []fileOp{wr(2*pageSize, pages(62, 1)), wr(0, pages(63, 1)), wr(0, pages(64, 3))}},
		{"whole pages across a partly staged page", []fileOp{wr(pageSize+9, "p"), wr(0, pages(65, 3)+"tail")}},
		{"whole pages past the end, unaligned head", []fileOp{wr(int64(len(orig))-5, pages(66, 4))}},
		{"whole pages then cut", []fileOp{wr(pageSize, pages(67, 2)), tr(2*pageSize + 1), wr(0, pages(68, 1))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "f")
			if err := os.WriteFile(image, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			want := kernelResult(t, orig, tt.ops)
			s, err := newStager(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			f, err := s.open(image, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range tt.ops {
				if op.data != nil {
					_, err = f.WriteAt(op.data, op.off)
				} else {
					err = f.Truncate(op.off)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := readAllFile(t, f); !bytes.Equal(got, want) {
				t.Fatal("staged file reads differ from the kernel's result")
			}
			if !bytes.Equal(readFile(t, image), orig) {
				t.Fatal("staging wrote to the real file")
			}
			j, err := writeJournal(image, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if j == nil {
				if !bytes.Equal(want, orig) {
					t.Fatal("no journal for a change")
				}
				return
			}
			if err := finishCommit(image, j, nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, image), want) {
				t.Fatal("committed file differs from the kernel's result")
			}
			if err := Rollback(image); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, image), orig) {
				t.Fatal("rollback did not restore the file")
			}
		})
	}
}

// kernelResult applies ops to a real file and returns its content.
func kernelResult(t *testing.T, orig []byte, ops []fileOp) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "k")
	os.WriteFile(p, orig, 0o644)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.data != nil {
			_, err = f.WriteAt(op.data, op.off)
		} else {
			err = f.Truncate(op.off)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return readFile(t, p)
}

func readAllFile(t *testing.T, f interface {
	ReadAt([]byte, int64) (int, error)
	Size() (int64, error)
}) []byte {
	t.Helper()
	n, _ := f.Size()
	b := make([]byte, n)
	if m, err := f.ReadAt(b, 0); m != len(b) {
		t.Fatalf("read %d of %d: %v", m, n, err)
	}
	return b
}
