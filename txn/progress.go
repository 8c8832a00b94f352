package txn

// progress reports how far a commit got, for a progress bar on long
// commits. A commit passes its changed bytes three times (staging through
// the format, journaling, applying), so the total is three times the
// overlay's changed bytes: an estimate, made exact by the final call.
type progress struct {
	fn          func(done, total int64)
	done, total int64
}

func newProgress(fn func(done, total int64), changed int64) *progress {
	if fn == nil {
		return nil
	}
	return &progress{fn: fn, total: 3 * changed}
}

func (p *progress) add(n int) {
	if p == nil {
		return
	}
	p.done = min(p.done+int64(n), p.total)
	p.fn(p.done, p.total)
}

func (p *progress) finish() {
	if p != nil {
		p.fn(p.total, p.total)
	}
}
