package ntfs

import (
	"sync"
	"testing"

	"github.com/offvm/offvm/volume"
)

// startReaders runs n readers beside a test's writes: reader g calls
// round(g, r) for r = 0, 1, ... until a round fails or the returned stop
// is called. stop waits for the readers and reports each failure on t
// (also run at cleanup, so that a test that stops early leaves none).
func startReaders(t *testing.T, n int, round func(g, r int) error) (stop func()) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	done := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; ; r++ {
				if err := round(g, r); err != nil {
					errs <- err
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			close(errs)
		})
	}
	t.Cleanup(end)
	return func() {
		t.Helper()
		end()
		for err := range errs {
			t.Error(err)
		}
	}
}

// openCounted opens img with its device reads counted.
func openCounted(t *testing.T, img string) (*readCountDev, *Volume) {
	t.Helper()
	dev := &readCountDev{Device: openDev(t, img, 0)}
	v, err := Open(dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dev, v
}

// mustResolve is the inode at path, or the test's end.
func mustResolve(t *testing.T, v *Volume, path string) volume.Ino {
	t.Helper()
	ino, err := resolve(v, path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ino
}
