package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/offvm/offvm/inspect"
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
images are flagged; use --json to script on the findings.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "html", Usage: "also write an HTML report to `FILE`"},
			&cli.IntFlag{Name: "max-age", Usage: "flag images not updated for more than `DAYS` days"},
			&cli.StringFlag{Name: "require", Usage: "flag Windows images missing any of these updates (`KB,...`)"},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output"},
			libvirtFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "[--html FILE] [--max-age DAYS] [--require KB,...] LIBRARY"); err != nil {
				return err
			}
			if c.Int("max-age") < 0 {
				return usagef("--max-age takes a number of days, not %d", c.Int("max-age"))
			}
			lib := c.Args().Get(0)
			infos, err := inspect.LibraryWith(lib, c.StringSlice("libvirt"))
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
