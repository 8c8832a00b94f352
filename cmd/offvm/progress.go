package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress is an overall bar on stderr for work over many images, drawn
// by mpb only when stderr is a terminal and --quiet was not given. Lines
// meant for stdout go above the bar when stdout is that terminal too, so
// the bar never overwrites them. A nil *progress draws nothing.
type progress struct {
	p   *mpb.Progress
	bar *mpb.Bar
	out io.Writer // where result lines go
	mu  sync.Mutex
}

// newProgress starts a bar of total steps named what, or returns nil when
// no bar should be drawn.
func newProgress(c *cli.Context, total int, what string) *progress {
	if c.Bool("quiet") || total < 2 || !isTerminal(os.Stderr) {
		return nil
	}
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(what+" "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarRemoveOnComplete(),
	)
	pr := &progress{p: p, bar: bar, out: c.App.Writer}
	if f, ok := c.App.Writer.(*os.File); ok && isTerminal(f) {
		pr.out = p
	}
	return pr
}

// step counts one image done.
func (p *progress) step() {
	if p != nil {
		p.bar.Increment()
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
}

// done removes the bar (all steps were counted or the work stopped).
func (p *progress) done() {
	if p == nil {
		return
	}
	if !p.bar.Completed() {
		p.bar.Abort(true)
	}
	p.p.Wait()
}
