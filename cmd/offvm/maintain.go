package main

import (
	"encoding/json"
	"fmt"

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
		Usage:     "finish an interrupted commit, then check the container, partitions and file systems",
		ArgsUsage: "IMAGE...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1, "[--json] IMAGE..."); err != nil {
				return err
			}
			var rs []mount.CheckResult
			bad := 0
			for _, p := range c.Args().Slice() {
				r := mount.Check(p)
				if !r.OK {
					bad++
				}
				rs = append(rs, r)
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
