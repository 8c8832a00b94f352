package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/report"
	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "report how far behind each image of LIBRARY is",
		ArgsUsage: "LIBRARY",
		Description: `Lists every image with its OS, last update and age, flagging images not updated
for more than --max-age days, images missing any --require'd update, and images
that cannot be opened. --html also writes a self-contained page (sortable table,
chart of update age) that needs no network. Exit status is 0 whether or not
images are flagged; use --json to script on the findings.
--shard I/N reports on one shard of the library; --merge FILE... builds one
report from the inventories of the shards ('offvm ls --json --shard I/N'),
without opening any image.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "html", Usage: "also write an HTML report to `FILE`"},
			&cli.IntFlag{Name: "max-age", Usage: "flag images not updated for more than `DAYS` days"},
			&cli.StringFlag{Name: "require", Usage: "flag Windows images missing any of these updates (`KB,...`)"},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output"},
			&cli.BoolFlag{Name: "merge", Usage: "build the report from FILEs that ls --json (or inspect --json) wrote, one per shard, instead of opening images"},
			shardFlag(), readJobsFlag(), libvirtFlag(),
		},
		Action: func(c *cli.Context) error {
			maxArgs := 1
			if c.Bool("merge") {
				maxArgs = -1
			}
			if err := needArgs(c, 1, maxArgs, "[--html FILE] [--max-age DAYS] [--require KB,...] [--shard I/N] LIBRARY | --merge FILE..."); err != nil {
				return err
			}
			if c.Int("max-age") < 0 {
				return usagef("--max-age takes a number of days, not %d", c.Int("max-age"))
			}
			lib := c.Args().Get(0)
			var infos []mount.Info
			var err error
			if c.Bool("merge") {
				infos, err = readInventories(c.Args().Slice())
				lib = commonDir(infos)
			} else {
				infos, err = describeLibrary(c, lib)
			}
			if err != nil {
				return err
			}
			var req []string
			if s := c.String("require"); s != "" {
				req = strings.Split(s, ",")
			}
			r := report.Build(lib, infos, report.Options{MaxAgeDays: c.Int("max-age"), Require: req})
			if p := c.String("html"); p != "" {
				if err := writeHTML(p, r); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, r)
			}
			return r.Text(c.App.Writer)
		},
	}
}

func writeHTML(path string, r report.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.HTML(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
