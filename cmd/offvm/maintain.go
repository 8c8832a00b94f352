package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/offvm/offvm/library"

	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "restore IMAGE, byte for byte, to what it was before its last commit",
		ArgsUsage: "IMAGE",
		Description: `Uses the undo record (IMAGE.offvm-undo) that the last commit left. Refuses,
with the reason, when the image changed since that commit.`,
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "IMAGE"); err != nil {
				return err
			}
			p := c.Args().Get(0)
			if err := mount.Rollback(p); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "rolled back %s\n", p)
			return nil
		},
	}
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "finish an interrupted commit, then check the container, partitions, file systems and hives",
		ArgsUsage: "IMAGE...",
		Description: `For each image: finishes or undoes a commit a crash interrupted, then opens the
container (headers, tables, parent chain) and the partition table, opens each
file system as a mount does (what its engine reads to open it: the boot sector
or superblock and the tables behind it; files are not walked one by one), and
walks every registry hive of a Windows guest whole (every key, value and data
cell). Exit 0 when all is sound. For a full file system check, use the
file system's own tool on 'disk' or pN of a mount.
An IMAGE may also be a library folder (every image in it); --shard I/N keeps
the images of one shard of it.`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}, shardFlag(), jobsFlag()},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1, "[--json] [--shard I/N] IMAGE..."); err != nil {
				return err
			}
			sh, err := shardOf(c)
			if err != nil {
				return err
			}
			jobs, err := jobsOf(c)
			if err != nil {
				return err
			}
			paths, err := checkTargets(c.Args().Slice(), sh)
			if err != nil {
				return err
			}
			rs := checkAll(c, paths, jobs)
			bad := 0
			for _, r := range rs {
				if !r.OK {
					bad++
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rs); err != nil {
					return err
				}
			} else {
				for _, r := range rs {
					printCheck(c, r)
				}
			}
			if bad > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d images have problems", bad, len(rs)), 1)
			}
			return nil
		},
	}
}

// checkTargets turns arguments into image paths: a folder stands for its
// images (of the shard), a file for itself (kept when its name is in the
// shard).
func checkTargets(args []string, sh library.Shard) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			if sh.Has(a, a) {
				out = append(out, a)
			}
			continue
		}
		ents, err := library.Walk(a)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if sh.Has(a, e.Path) {
				out = append(out, e.Path)
			}
		}
	}
	return out, nil
}

// checkAll checks jobs images at once; results keep the order of paths.
func checkAll(c *cli.Context, paths []string, jobs int) []mount.CheckResult {
	rs := make([]mount.CheckResult, len(paths))
	eachImage(c, len(paths), jobs, "checking", func(i int) { rs[i] = mount.Check(paths[i]) })
	return rs
}

func printCheck(c *cli.Context, r mount.CheckResult) {
	state := "ok"
	if !r.OK {
		state = "problems"
	}
	if r.Recovered {
		state += " (an interrupted commit was recovered)"
	}
	fmt.Fprintf(c.App.Writer, "%s: %s\n", r.Image, state)
	for _, p := range r.Problems {
		fmt.Fprintf(c.App.Writer, "  %s\n", p)
	}
}
