package main

import (
	"fmt"
	"strings"

	"github.com/offvm/offvm/patcher"
	"github.com/urfave/cli/v2"
)

func patchCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "machine-readable output: one JSON object per image a line (JSON Lines)"}
	return &cli.Command{
		Name:  "patch",
		Usage: "apply update bundles to images, all or nothing per image",
		Description: `A bundle is a directory:
  patch.toml        id, title, delete = ['C:\path', ...], [applies] os, product (glob),
                    min_build, max_build, arch
  files/C/...       copied into drive C: (files/p1/... into partition 1); a file whose
                    size and content match is not rewritten
  registry/*.reg    merged in name order (REGEDIT4 or 5.00, UTF-16LE with BOM or UTF-8)
A bundle whose paths leave their volume (.., links, absolute paths, names Windows
cannot hold) is refused before anything is written.`,
		Subcommands: []*cli.Command{
			{
				Name: "apply", Usage: "apply BUNDLE to each TARGET, one transaction per image",
				ArgsUsage: "BUNDLE TARGET...",
				Description: `TARGET is an image file, a library directory (every image in it), or an
image's directory (or a folder) of a mounted offvm tree.
Prints one line per image: applied, already applied, not applicable: <why>,
or failed: <why> (that image is left byte-identical). An image file is
written as one transaction (offvm rollback undoes it). Through a mounted
tree a bundle cannot land as one unit, so applying there is refused with
what to do (offvm unmount, then apply to the image file); status and
--dry-run read through the tree (files under pN/, values under registry/).
After it, a Windows image carries HKLM\SOFTWARE\offvm\Patches\<id> (Title,
Applied, Files, RegistryChanges, Changes); a Linux one carries
/var/lib/offvm/patches/<id> (on ext4; ext2/ext3 volumes are read-only in
offvm, so such images fail with that reason). An image another one uses as its parent is
never written.
--dry-run opens each image read-only and lists what would change, file by
file and value by value. --shard I/N keeps the images whose stable shard
(a hash of the path relative to the TARGET) is I of N: N hosts, each with
its own I, patch a library between them, each image once; a retried shard
redoes only what is not applied yet. --json prints one JSON object per
image a line (JSON Lines: shard outputs concatenate). Exit 0 when no image
failed, 1 otherwise.`,
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, change nothing"},
					jobsFlag(), shardFlag(), jsonFlag,
				},
				Action: func(c *cli.Context) error { return patchRun(c, false) },
			},
			{
				Name: "status", Usage: "tell whether BUNDLE is applied to each TARGET",
				ArgsUsage: "BUNDLE TARGET...",
				Description: `Prints one line per image: applied (when), not applied, not applicable: <why>,
or failed: <why>. Opens images read-only.`,
				Flags:  []cli.Flag{jobsFlag(), shardFlag(), jsonFlag},
				Action: func(c *cli.Context) error { return patchRun(c, true) },
			},
		},
	}
}

func patchRun(c *cli.Context, status bool) error {
	if c.NArg() < 2 {
		return usagef("usage: offvm %s BUNDLE TARGET...", commandPath(c))
	}
	jobs, err := jobsOf(c)
	if err != nil {
		return err
	}
	sh, err := shardOf(c)
	if err != nil {
		return err
	}
	b, err := patcher.LoadBundle(c.Args().First())
	if err != nil {
		return err
	}
	imgs := shardTargets(c.Args().Slice()[1:], sh)
	res, err := runPatches(c, b, imgs, jobs, status, patcher.Options{DryRun: c.Bool("dry-run")})
	if err != nil {
		return err
	}
	var bad []string
	for _, r := range res {
		if r.Failed() {
			bad = append(bad, r.Image)
		}
	}
	if len(bad) > 0 {
		return cli.Exit(fmt.Sprintf("patch %s failed for %s", b.ID, strings.Join(bad, ", ")), 1)
	}
	return nil
}
