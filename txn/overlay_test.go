package txn

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

func memOverlay(t *testing.T, data []byte) (*Overlay, *vdisk.MemFile) {
	t.Helper()
	mf := vdisk.NewMemFile("base", data)
	base, err := raw.Open(mf, vdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOverlay(base, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o, mf
}

// TestOverlayMatchesModel checks reads after random writes against a plain
// byte slice that takes the same writes, and that the base never changes.
func TestOverlayMatchesModel(t *testing.T) {
	for _, size := range []int{BlockSize, 3*BlockSize + 100, 64 * BlockSize, 100} {
		t.Run("", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(size), 1))
			orig := make([]byte, size)
			for i := range orig {
				orig[i] = byte(rng.IntN(256))
			}
			o, mf := memOverlay(t, orig)
			model := bytes.Clone(orig)
			for step := range 300 {
				off := rng.IntN(size)
				n := rng.IntN(min(size-off, 3*BlockSize)) + 1
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(rng.IntN(256))
				}
				if _, err := o.WriteAt(p, int64(off)); err != nil {
					t.Fatal(err)
				}
				copy(model[off:], p)
				if step == 150 {
					if err := o.Discard(); err != nil {
						t.Fatal(err)
					}
					copy(model, orig)
					if o.Dirty() || o.ChangedBytes() != 0 {
						t.Fatalf("after Discard: dirty %v, %d bytes", o.Dirty(), o.ChangedBytes())
					}
				}
				checkRead(t, o, model, rng)
			}
			if !bytes.Equal(mf.Bytes(), orig) {
				t.Fatal("overlay wrote to its base")
			}
			if !o.Dirty() || o.ChangedBytes() <= 0 || o.ChangedBytes() > int64(size) {
				t.Fatalf("dirty %v, changed %d of %d", o.Dirty(), o.ChangedBytes(), size)
			}
			var got []byte
			o.Changes(func(off int64, p []byte) error {
				if int(off) < len(got) {
					t.Fatalf("Changes out of order at %d", off)
				}
				got = append(got, model[len(got):off]...)
				if !bytes.Equal(p, model[off:off+int64(len(p))]) {
					t.Fatalf("Changes gives wrong bytes at %d", off)
				}
				got = append(got, p...)
				return nil
			})
		})
	}
}

func checkRead(t *testing.T, o *Overlay, model []byte, rng *rand.Rand) {
	t.Helper()
	off := rng.IntN(len(model))
	n := rng.IntN(len(model)-off+BlockSize) + 1 // sometimes past the end
	p := make([]byte, n)
	got, err := o.ReadAt(p, int64(off))
	want := min(n, len(model)-off)
	if got != want || (got < n && err != io.EOF) || (got == n && err != nil) {
		t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d", n, off, got, err, want)
	}
	if !bytes.Equal(p[:got], model[off:off+got]) {
		t.Fatalf("ReadAt(%d, %d) differs from model", n, off)
	}
}

func TestOverlayErrors(t *testing.T) {
	o, _ := memOverlay(t, make([]byte, 2*BlockSize))
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"past end", 2 * BlockSize, 1},
		{"across end", 2*BlockSize - 1, 2},
		{"negative", -1, 1},
	}
	for _, tt := range tests {
		if _, err := o.WriteAt(make([]byte, tt.n), tt.off); !errors.Is(err, vdisk.ErrOutOfRange) {
			t.Errorf("%s: WriteAt error %v, want ErrOutOfRange", tt.name, err)
		}
	}
	if n, err := o.ReadAt(make([]byte, 1), 2*BlockSize); n != 0 || err != io.EOF {
		t.Errorf("read at end: %d, %v", n, err)
	}
	o.Close()
	if _, err := o.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("read after Close succeeded")
	}
}

// TestOverlayConcurrent runs readers against a writer (run with -race).
func TestOverlayConcurrent(t *testing.T) {
	const size = 256 * BlockSize
	o, _ := memOverlay(t, make([]byte, size))
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			p := make([]byte, 3*BlockSize)
			for range 500 {
				off := rng.Int64N(size - int64(len(p)))
				if _, err := o.ReadAt(p, off); err != nil {
					t.Error(err)
					return
				}
				// every block holds one repeated byte: a torn read shows
				for i := 1; i < len(p); i++ {
					if (off+int64(i))%BlockSize != 0 && p[i] != p[i-1] {
						t.Errorf("torn read at %d", off+int64(i))
						return
					}
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 2000 {
		blk := rng.Int64N(size / BlockSize)
		if _, err := o.WriteAt(bytes.Repeat([]byte{byte(rng.IntN(256))}, BlockSize), blk*BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
