package ntfs

import (
	"bytes"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

func TestZZSlow(t *testing.T) {
	base, _ := os.ReadFile(testutil.Corpus(t, "ntfs/testfs1"))
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		img := bytes.Clone(base)
		at := 16384 + rnd.Intn(200*1024)
		n := 1 + rnd.Intn(4)
		patch := make([]byte, n)
		rnd.Read(patch)
		copy(img[at:], patch)
		start := time.Now()
		done := make(chan bool)
		go func() {
			v, err := Open(&memDev{img}, Options{ReadOnly: true})
			if err == nil {
				exercise(v)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("slow: patch %x at %d", patch, at)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Logf("%v: patch %x at %d", d, patch, at)
		}
	}
}
