package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the images of a library: format, size, partitions and file systems",
		ArgsUsage: "LIBRARY",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "[--json] LIBRARY"); err != nil {
				return err
			}
			ents, err := library.Walk(c.Args().Get(0))
			if err != nil {
				return err
			}
			infos := make([]mount.Info, 0, len(ents))
			for _, e := range ents {
				infos = append(infos, describe(e.Path))
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(infos)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			for _, inf := range infos {
				fmt.Fprintln(tw, lsLine(inf))
			}
			return tw.Flush()
		},
	}
}

// describe opens an image read-only and says what it holds; an image that
// cannot be opened is described by its error.
func describe(path string) mount.Info {
	im, err := mount.Open(path, mount.Options{ReadOnly: true})
	if err != nil {
		return mount.ErrorInfo(path, err)
	}
	defer im.Close()
	return inspect.Describe(im)
}

func lsLine(inf mount.Info) string {
	if inf.Error != nil {
		return fmt.Sprintf("%s\terror\t\t%s", inf.Path, *inf.Error)
	}
	format := deref(inf.Format)
	if v := deref(inf.Variant); v != "" {
		format += " " + v
	}
	var parts []string
	for _, p := range inf.Partitions {
		s := fmt.Sprintf("p%d %s %s", p.Number, orDash(p.Filesystem), humanize.IBytes(uint64(p.Size)))
		if p.Label != nil {
			s += fmt.Sprintf(" %q", *p.Label)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s", inf.Path, format, humanize.IBytes(uint64(*inf.VirtualSize)), strings.Join(parts, ", "))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
