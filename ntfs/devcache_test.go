package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"unicode"

	"github.com/offvm/offvm/volume"
)

// flakyDev is a memory device whose writes can fail after writing part
// of what they were given, as a device tearing a write does.
type flakyDev struct {
	memDev
	failNext bool
	reads    int
}

func (d *flakyDev) ReadAt(p []byte, off int64) (int, error) {
	d.reads++
	return d.memDev.ReadAt(p, off)
}

func (d *flakyDev) WriteAt(p []byte, off int64) (int, error) {
	if d.failNext {
		d.failNext = false
		n, _ := d.memDev.WriteAt(p[:len(p)/3], off)
		return n, errors.New("injected I/O error")
	}
	return d.memDev.WriteAt(p, off)
}

// TestDevCacheReadsWhatTheDeviceHolds drives a cached and a plain view of
// one device with random reads and writes (failing ones included) and
// checks that every read through the cache gives the device's bytes.
func TestDevCacheReadsWhatTheDeviceHolds(t *testing.T) {
	cases := []struct {
		name   string
		size   int
		maxLen int
		fail   bool
	}{
		{"small reads and writes", 64 << 10, 3000, false},
		{"reads across blocks", 64 << 10, 12000, false},
		{"device size not a multiple of the block", 64<<10 + 1000, 5000, false},
		{"torn writes", 64 << 10, 9000, true},
		{"reads bigger than cached", 128 << 10, 40 << 10, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewSource(int64(tc.size + tc.maxLen)))
			d := &flakyDev{memDev: memDev{b: make([]byte, tc.size)}}
			rnd.Read(d.b)
			c := newDevCache(d)
			for i := 0; i < 3000; i++ {
				n := 1 + rnd.Intn(tc.maxLen)
				off := rnd.Int63n(int64(tc.size - n + 1))
				if rnd.Intn(3) == 0 {
					p := make([]byte, n)
					rnd.Read(p)
					d.failNext = tc.fail && rnd.Intn(4) == 0
					c.WriteAt(p, off)
					continue
				}
				got := make([]byte, n)
				if _, err := c.ReadAt(got, off); err != nil {
					t.Fatalf("read %d at %d: %v", n, off, err)
				}
				if want := d.b[off : off+int64(n)]; !bytes.Equal(got, want) {
					t.Fatalf("step %d: %d bytes at %d through the cache differ from the device", i, n, off)
				}
			}
		})
	}
}

// TestDevCacheSavesReads checks the point of the cache: a record read
// again costs no device read.
func TestDevCacheSavesReads(t *testing.T) {
	d := &flakyDev{memDev: memDev{b: make([]byte, 1<<20)}}
	c := newDevCache(d)
	buf := make([]byte, 1024)
	for i := 0; i < 10; i++ {
		c.ReadAt(buf, 8192+1024)
	}
	c.WriteAt(buf, 8192)
	c.ReadAt(buf, 8192+2048)
	if d.reads != 1 {
		t.Fatalf("%d device reads for one block read ten times and written through; want 1", d.reads)
	}
}

// TestCollateKeysMatchesCollateExact checks the in-place comparison of
// $FILE_NAME keys against the one on decoded names.
func TestCollateKeysMatchesCollateExact(t *testing.T) {
	up := new(upcaseTable) // Unicode's simple upper case, as loadUpcase's fallback
	for i := range up {
		up[i] = uint16(i)
		if r := unicode.ToUpper(rune(i)); r <= 0xffff {
			up[i] = uint16(r)
		}
	}
	v := &Volume{up: upcaseOf(up)}
	names := []string{"", "a", "A", "ab", "aB", "Ab", "b", "ä", "Ä", "z", "Windows", "WINDOWS", "windows",
		"system32", "System32.dll", "new-patch-file-1-with-a-long-name.dll", "microsoft-windows-component",
		"日本語", "ǅ", "ǆ", "Ǆ", "ß", "SS", "\U0001F600", "a\U0001F600"}
	key := func(s string) []byte { return newFileName(5, s, 0, nsPOSIX) }
	for _, a := range names {
		for _, b := range names {
			ka, kb := key(a), key(b)
			want := v.up.collateExact(keyName(ka), keyName(kb))
			if got := v.collateKeys(ka, kb); got != want {
				t.Errorf("collateKeys(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if got := v.collateKeys([]byte{1, 2}, key("a")); got != -1 {
		t.Errorf("a short key collates %d against a name, want -1 (as no name)", got)
	}
}

// cacheMatchesDevice reports the first block the write-mode device cache
// of v holds with bytes other than dev's: after an operation failed and
// was undone, a reader must see what the device holds (the state before
// the operation), not what the operation had written.
func cacheMatchesDevice(v *Volume, dev volume.Device) error {
	c, ok := v.dev.(*devCache)
	if !ok {
		return nil // the volume was never written
	}
	var keys []int64
	c.blocks.RemoveIf(func(b int64) bool { keys = append(keys, b); return false })
	for _, b := range keys {
		blk, ok := c.blocks.Get(b)
		if !ok {
			continue
		}
		now := make([]byte, len(blk))
		if _, err := dev.ReadAt(now, b*devBlock); err != nil {
			return fmt.Errorf("reading block %d of the device: %w", b, err)
		}
		if !bytes.Equal(now, blk) {
			return fmt.Errorf("cached block %d (byte %d) differs from the device", b, b*devBlock)
		}
	}
	return nil
}
