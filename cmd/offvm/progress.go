package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress is an overall bar on stderr for work over many images, drawn
// by mpb only when stderr is a terminal and --quiet was not given. Lines
// meant for stdout go above the bar when stdout is that terminal too, so
// the bar never overwrites them. A nil *progress draws nothing.
type progress struct {
	p       *mpb.Progress
	bar     *mpb.Bar
	out     io.Writer     // where result lines go
	refresh chan any      // redraws now (each step, each line) and on a tick
	stop    chan struct{} // ends the ticker
	text    atomic.Value  // a status line's text
	mu      sync.Mutex
}

// newStatusLine starts one line of changing text (a commit's advance) on
// a terminal, or returns nil.
func newStatusLine(c *cli.Context) *progress {
	if c.Bool("quiet") || !isTerminal(os.Stderr) {
		return nil
	}
	refresh := make(chan any, 1)
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithManualRefresh(refresh))
	pr := &progress{p: p, refresh: refresh, stop: make(chan struct{}), out: c.App.Writer}
	pr.bar = p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		if s, ok := pr.text.Load().(string); ok {
			return s
		}
		return ""
	})), mpb.BarRemoveOnComplete())
	if f, ok := c.App.Writer.(*os.File); ok && isTerminal(f) {
		pr.out = p
	}
	go pr.tick()
	return pr
}

// status replaces the status line's text.
func (p *progress) status(s string) {
	if p != nil {
		p.text.Store(s)
		p.redraw()
	}
}

// newProgress starts a bar of total steps named what, or returns nil when
// no bar should be drawn.
func newProgress(c *cli.Context, total int, what string) *progress {
	if c.Bool("quiet") || total < 2 || !isTerminal(os.Stderr) {
		return nil
	}
	refresh := make(chan any, 1)
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40), mpb.WithManualRefresh(refresh))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(what+" "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarRemoveOnComplete(),
	)
	pr := &progress{p: p, bar: bar, out: c.App.Writer, refresh: refresh, stop: make(chan struct{})}
	if f, ok := c.App.Writer.(*os.File); ok && isTerminal(f) {
		pr.out = p
	}
	pr.redraw()
	go pr.tick()
	return pr
}

// redraws come on every step, so even fast work shows its bar, and on a
// tick, so a slow image shows the time going.
func (p *progress) redraw() {
	select {
	case p.refresh <- struct{}{}:
	default: // a redraw is already due
	}
}

func (p *progress) tick() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.redraw()
		case <-p.stop:
			return
		}
	}
}

// step counts one image done.
func (p *progress) step() {
	if p != nil {
		p.bar.Increment()
		p.redraw()
	}
}

// println prints a result line to w, or above the bar when stdout and
// the bar share a terminal.
func (p *progress) println(w io.Writer, line string) {
	if p == nil || p.out != io.Writer(p.p) {
		fmt.Fprintln(w, line)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.p, line)
	p.redraw()
}

// done removes the bar (all steps were counted or the work stopped).
func (p *progress) done() {
	if p == nil {
		return
	}
	close(p.stop)
	if !p.bar.Completed() {
		p.bar.Abort(true)
	}
	p.p.Wait()
}
