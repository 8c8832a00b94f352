package main

import "github.com/urfave/cli/v2"

// Commands of the contract that later issues build. Each is in --help and
// says plainly that it is not there yet.

func patchCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "machine-readable output"}
	return &cli.Command{
		Name:  "patch",
		Usage: "apply update bundles to images, all or nothing per image",
		Subcommands: []*cli.Command{
			{Name: "apply", Usage: "apply BUNDLE to each TARGET", ArgsUsage: "BUNDLE TARGET...", Action: notYet("patch apply"),
				Flags: []cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, change nothing"}, &cli.IntFlag{Name: "jobs", Usage: "images patched at once", Value: 1}, jsonFlag}},
			{Name: "status", Usage: "tell whether BUNDLE is applied to each TARGET", ArgsUsage: "BUNDLE TARGET...", Action: notYet("patch status"), Flags: []cli.Flag{jsonFlag}},
		},
	}
}
