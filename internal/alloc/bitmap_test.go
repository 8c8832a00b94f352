package alloc

import (
	"math/rand"
	"reflect"
	"testing"
)

// parse builds a bitmap from "1" and "0" characters, bit 0 first.
func parse(s string) Bitmap {
	b := make(Bitmap, (len(s)+7)/8)
	for i, c := range s {
		b.Put(int64(i), c == '1')
	}
	return b
}

func TestSearches(t *testing.T) {
	cases := []struct {
		bits              string
		from, to, n       int64
		next, find, runAt int64 // want NextClear, FindClear, ClearRun start
		runLen            int64
	}{
		{"0000000000000000", 0, 16, 4, 0, 0, 0, 4},
		{"1111111111111111", 0, 16, 1, -1, -1, -1, 0},
		{"1111111101111111", 0, 16, 1, 8, 8, 8, 1},
		{"1101100011111000", 0, 16, 3, 2, 5, 2, 1},
		{"1101100011111000", 0, 16, 4, 2, -1, 2, 1},
		{"1101100011111000", 6, 16, 3, 6, 13, 6, 2},
		{"1111111111111111000", 0, 19, 3, 16, 16, 16, 3},
		{"0001", 0, 2, 3, 0, -1, 0, 2}, // runs stop at to
	}
	for _, c := range cases {
		b := parse(c.bits)
		if got := b.NextClear(c.from, c.to); got != c.next {
			t.Errorf("%s NextClear(%d,%d) = %d, want %d", c.bits, c.from, c.to, got, c.next)
		}
		if got := b.FindClear(c.from, c.to, c.n); got != c.find {
			t.Errorf("%s FindClear(%d,%d,%d) = %d, want %d", c.bits, c.from, c.to, c.n, got, c.find)
		}
		if s, n := b.ClearRun(c.from, c.to, c.n); s != c.runAt || n != c.runLen {
			t.Errorf("%s ClearRun(%d,%d,%d) = %d,%d, want %d,%d", c.bits, c.from, c.to, c.n, s, n, c.runAt, c.runLen)
		}
	}
}

func TestGatherAndRanges(t *testing.T) {
	b := parse("1100111001111100")
	if got, want := b.Gather(16, 5), []Extent{{2, 2}, {7, 2}, {14, 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Gather = %v, want %v", got, want)
	}
	if got := b.Gather(16, 7); got != nil {
		t.Errorf("Gather of more than is free = %v, want nil", got)
	}
	b.PutRange(2, 2, true)
	if !b.AllSet(0, 7) || b.AllSet(0, 8) {
		t.Errorf("AllSet after PutRange wrong: %08b", b)
	}
}

// TestAgainstNaive compares the searches with bit-by-bit loops on random
// bitmaps, dense and sparse, where the byte skipping could go wrong.
func TestAgainstNaive(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		size := int64(1 + rnd.Intn(200))
		b := make(Bitmap, (size+7)/8)
		fill := rnd.Float64()
		for i := int64(0); i < b.Len(); i++ {
			b.Put(i, rnd.Float64() < fill)
		}
		from := rnd.Int63n(size)
		to := from + rnd.Int63n(size-from+1)
		n := 1 + rnd.Int63n(9)
		want := int64(-1)
		for i := from; i+n <= to && want < 0; i++ {
			ok := true
			for k := i; k < i+n; k++ {
				ok = ok && !b.Get(k)
			}
			if ok {
				want = i
			}
		}
		if got := b.FindClear(from, to, n); got != want {
			t.Fatalf("FindClear(%d,%d,%d) on %08b = %d, want %d", from, to, n, b, got, want)
		}
	}
}

func FuzzSearches(f *testing.F) {
	f.Add([]byte{0xff, 0x0f, 0}, int64(0), int64(24), int64(3))
	f.Fuzz(func(t *testing.T, raw []byte, from, to, n int64) {
		b := Bitmap(raw)
		if from < 0 || to > b.Len() || from > to || n <= 0 {
			return
		}
		if s := b.FindClear(from, to, n); s >= 0 {
			if s < from || s+n > to || b.NextClear(s, s+n) != s || !isClear(b, s, n) {
				t.Fatalf("FindClear returned %d, not a clear run of %d in [%d,%d)", s, n, from, to)
			}
		}
		if s, got := b.ClearRun(from, to, n); s >= 0 && (got < 1 || got > n || !isClear(b, s, got)) {
			t.Fatalf("ClearRun returned %d+%d", s, got)
		}
	})
}

func isClear(b Bitmap, s, n int64) bool {
	for i := s; i < s+n; i++ {
		if b.Get(i) {
			return false
		}
	}
	return true
}
