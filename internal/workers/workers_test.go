package workers

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEach: every index runs exactly once, never more than jobs at once,
// and a jobs below one still runs everything, one at a time.
func TestEach(t *testing.T) {
	for _, tc := range []struct{ n, jobs, wantMax int }{
		{0, 4, 0},
		{1, 4, 1},
		{10, 1, 1},
		{10, 0, 1},
		{10, -3, 1},
		{40, 4, 4},
		{3, 8, 3},
	} {
		var (
			mu          sync.Mutex
			seen        = make([]int, tc.n)
			running, hi atomic.Int32
		)
		Each(tc.n, tc.jobs, func(i int) {
			now := running.Add(1)
			for {
				old := hi.Load()
				if now <= old || hi.CompareAndSwap(old, now) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // let the others pile up
			mu.Lock()
			seen[i]++
			mu.Unlock()
			running.Add(-1)
		})
		for i, c := range seen {
			if c != 1 {
				t.Errorf("n=%d jobs=%d: index %d ran %d times", tc.n, tc.jobs, i, c)
			}
		}
		if got := int(hi.Load()); got > max(tc.jobs, 1) || (tc.wantMax > 0 && got < 1) {
			t.Errorf("n=%d jobs=%d: %d ran at once, want at most %d", tc.n, tc.jobs, got, max(tc.jobs, 1))
		}
		if tc.n >= 40 && int(hi.Load()) != tc.wantMax {
			t.Errorf("n=%d jobs=%d: at most %d ran at once, want %d side by side", tc.n, tc.jobs, hi.Load(), tc.wantMax)
		}
	}
}
