package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

// imageInfo is what info.json and inspect show of an open image.
func imageInfo(im *mount.Image) any { return inspect.Describe(im) }

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "tell what each image is: container, partitions, file systems",
		ArgsUsage: "IMAGE...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}, readJobsFlag()},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1, "[--json] IMAGE..."); err != nil {
				return err
			}
			jobs, err := readJobsOf(c)
			if err != nil {
				return err
			}
			infos := inspectAll(c, c.Args().Slice(), jobs)
			failed := 0
			for _, inf := range infos {
				if inf.Error != nil {
					failed++
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				var v any = infos
				if len(infos) == 1 {
					v = infos[0]
				}
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else {
				if err := lsTable(c.App.Writer, infos, time.Now()); err != nil {
					return err
				}
			}
			if failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d images could not be opened", failed, len(infos)), 1)
			}
			return nil
		},
	}
}

// inspectAll describes jobs images at once, through the inventory cache;
// results keep the order of paths.
func inspectAll(c *cli.Context, paths []string, jobs int) []mount.Info {
	cache := inventoryCache(c)
	if len(paths) > 1 {
		batchGC()
	}
	out := make([]mount.Info, len(paths))
	eachImage(c, len(paths), jobs, "inspecting", func(i int) { out[i] = inspect.ImageCached(cache, paths[i]) })
	flushCache(cache)
	return out
}
