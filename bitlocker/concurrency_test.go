package bitlocker

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// lockedDev is a memory device safe for concurrent use.
type lockedDev struct {
	mu sync.Mutex
	b  memDev
}

func (d *lockedDev) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.b.ReadAt(p, off)
}

func (d *lockedDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.b.WriteAt(p, off)
}

func (d *lockedDev) Size() int64 { return d.b.Size() }

// TestConcurrentReadersAndWriters: writers that share sectors (each owns
// every fourth byte of a run, so every write is a read-merge-write of a
// sector another writer is changing) and readers all at once; in the end
// every writer's last bytes are there.
func TestConcurrentReadersAndWriters(t *testing.T) {
	s := synth{version: 2, method: AES128XTS, fvek: bytes.Repeat([]byte{7}, 32), state: StateEncrypted, size: 8 << 20, encSize: 8 << 20}
	dev := &lockedDev{b: memDev(s.build(t, make([]byte, 8<<20)))}
	d, _, _, err := Open(dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	const base, span, writers, rounds = 5<<20 + 100, 1500, 4, 8
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				for i := w; i < span; i += writers {
					if _, err := d.WriteAt([]byte{byte(w*rounds + r)}, base+int64(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(r)))
			buf := make([]byte, 10000)
			for i := 0; i < 200; i++ {
				if _, err := d.ReadAt(buf, base-5000+rng.Int63n(8000)); err != nil {
					t.Error(err)
					return
				}
			}
		}(r)
	}
	wg.Wait()
	got := make([]byte, span)
	if _, err := d.ReadAt(got, base); err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		if w := i % writers; c != byte(w*rounds+rounds-1) {
			t.Fatalf("byte %d is %d, writer %d last wrote %d", i, c, w, w*rounds+rounds-1)
		}
	}
	// and a fresh open of the same bytes reads the same
	d2, _, _, err := Open(dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	again := make([]byte, span)
	d2.ReadAt(again, base)
	if !bytes.Equal(again, got) {
		t.Error(fmt.Errorf("reopened volume reads differently"))
	}
}
