package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/inventory"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

// Options for work over many images, shared by patch, ls, report and
// check: --shard cuts a library into disjoint parts that hosts work on
// side by side; --jobs sets how many images one host works on at once.

func shardFlag() cli.Flag {
	return &cli.StringFlag{Name: "shard", Usage: "only the images whose stable shard is `I/N` (0 <= I < N; a hash of each image's path relative to the library named)"}
}

func jobsFlag() cli.Flag {
	return &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, DefaultText: "the number of CPUs", Usage: "work on `N` images at once (0 also means the number of CPUs)"}
}

// readJobsFlag is --jobs of the commands that only read images (ls,
// report, inspect): a cold image's reads wait on storage, so more images
// than CPUs are read at once (ls of 1,000 Windows images, cold: 4 per CPU
// 1.16-1.21 times as fast as 1 per CPU in 8 interleaved pairs).
func readJobsFlag() cli.Flag {
	return &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, DefaultText: "4 per CPU", Usage: "read `N` images at once (0 also means 4 per CPU)"}
}

// readJobsOf reads readJobsFlag.
func readJobsOf(c *cli.Context) (int, error) {
	if c.Int("jobs") == 0 {
		return 4 * runtime.NumCPU(), nil
	}
	return jobsOf(c)
}

// shardOf reads --shard; a malformed one is a usage mistake.
func shardOf(c *cli.Context) (library.Shard, error) {
	s := c.String("shard")
	if s == "" {
		return library.Shard{}, nil
	}
	sh, err := library.ParseShard(s)
	if err != nil {
		return sh, usagef("%v", err)
	}
	return sh, nil
}

// jobsOf reads --jobs.
func jobsOf(c *cli.Context) (int, error) {
	switch n := c.Int("jobs"); {
	case n == 0:
		return runtime.NumCPU(), nil
	case n > 0:
		return n, nil
	}
	return 0, usagef("--jobs takes a number of images, not %d", c.Int("jobs"))
}

// describeLibrary describes the images of one shard of a library, --jobs at a
// time, with a bar on a terminal.
func describeLibrary(c *cli.Context, root string) ([]mount.Info, error) {
	sh, err := shardOf(c)
	if err != nil {
		return nil, err
	}
	jobs, err := readJobsOf(c)
	if err != nil {
		return nil, err
	}
	batchGC()
	var bar *progress
	defer func() { bar.done() }()
	return inspect.LibraryWith(root, inspect.LibraryOptions{
		Jobs: jobs, Shard: sh, Cache: inventoryCache(c), VMDirs: c.StringSlice("libvirt"),
		Found: func(n int) { bar = newProgress(c, n, "inspecting") },
		Done:  func(mount.Info) { bar.step() },
	})
}

// batchGC tunes the garbage collector for describing many images.
// Each image allocates short-lived buffers (the tables, records and hive
// pages read: about 0.9 MB per Windows image) while what stays live is one
// description per image: with Go's default (GOGC=100: a collection per
// 4 MB allocated) collecting was a quarter of ls's CPU. The heap may grow
// to 5 times what is live (ls of 200 Windows images: 37 MB resident, was
// 24), within a soft limit of 512 MiB; GOGC and GOMEMLIMIT, when set, win.
func batchGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}

// writeJSONLine writes v as one compact JSON line (JSON Lines), so the
// outputs of several shards concatenate into one valid stream.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// absPath is p made absolute, or p when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// eachImage runs do(i) for i in 0..n-1, jobs at a time, with a bar named
// verb on a terminal; it returns when all are done.
func eachImage(c *cli.Context, n, jobs int, verb string, do func(i int)) {
	bar := newProgress(c, n, verb)
	defer bar.done()
	workers.Each(n, jobs, func(i int) {
		do(i)
		bar.step()
	})
}

// inventoryCache is the inventory cache, or nil when --keys is given: a
// cached description was made without those secrets (a volume shown
// locked), and secrets never go into the cache.
func inventoryCache(c *cli.Context) *inventory.Cache {
	if c.String("keys") != "" {
		return nil
	}
	return inventory.Open()
}

// flushCache writes what the cache learnt; a cache that cannot be
// written costs the next run its speed, not this one its result.
func flushCache(cache *inventory.Cache) {
	if err := cache.Flush(); err != nil {
		slog.Warn("inventory cache not written", "err", err)
	}
}
