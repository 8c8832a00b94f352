package main

import (
	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/patcher"
	"github.com/urfave/cli/v2"
)

// shardTargets expands each TARGET into images and keeps those of the
// shard, each image once. An image's shard is taken from its path
// relative to the TARGET that named it (its directory in a mounted tree
// mirrors that path). A TARGET that could not be read stays in every
// shard: it is no image's to skip.
func shardTargets(targets []string, sh library.Shard) []patcher.Image {
	var out []patcher.Image
	seen := map[string]bool{}
	for _, arg := range targets {
		for _, img := range patcher.Expand([]string{arg}) {
			where := img.Path
			if img.Mount != "" {
				where = img.Mount
			}
			if img.Err == nil && !sh.Has(arg, where) {
				continue
			}
			key := absPath(img.Path)
			if img.Err == nil && seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, img)
		}
	}
	return out
}

// runPatches works on jobs images at once and prints each result as soon
// as it and every result before it are known: output keeps the order of
// the images, and a long run shows its progress (and a bar on a terminal).
func runPatches(c *cli.Context, b *patcher.Bundle, imgs []patcher.Image, jobs int, status bool, opts patcher.Options) ([]patcher.Result, error) {
	verb := "patching"
	if status {
		verb = "checking"
	}
	bar := newProgress(c, len(imgs), verb)
	defer bar.done()
	res := make([]patcher.Result, len(imgs))
	done := make(chan int, len(imgs))
	go workers.Each(len(imgs), jobs, func(i int) {
		res[i] = patcher.Run(b, imgs[i:i+1], 1, status, opts)[0]
		done <- i
	})
	ready := make([]bool, len(imgs))
	next := 0
	var werr error
	for range imgs {
		ready[<-done] = true
		bar.step()
		for ; next < len(imgs) && ready[next]; next++ {
			if err := printResult(c, bar, res[next]); err != nil && werr == nil {
				werr = err
			}
		}
	}
	return res, werr
}

// printResult prints one result: a JSON line with --json, else its line
// (and with --dry-run the changes it would make).
func printResult(c *cli.Context, bar *progress, r patcher.Result) error {
	w := c.App.Writer
	if c.Bool("json") {
		return writeJSONLine(w, r)
	}
	bar.println(w, r.Line())
	if r.Status == patcher.WouldApply {
		for _, ch := range r.Changes {
			bar.println(w, "  "+ch.String())
		}
	}
	return nil
}
