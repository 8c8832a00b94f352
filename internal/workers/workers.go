// Package workers runs independent pieces of work over a library, a bounded
// number at a time: the one loop that ls, report, inspect, patch apply and
// updates scan share (--jobs).
package workers

import "sync"

// Each calls fn(i) for every i in [0, n), at most jobs at once (at least
// one), and returns when every call has. The calls are independent: fn
// stores its own result (at index i) and never fails the others.
func Each(n, jobs int, fn func(i int)) {
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}
