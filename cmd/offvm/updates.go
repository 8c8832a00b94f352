package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/offvm/offvm/patcher"
	"github.com/offvm/offvm/updates"
	"github.com/urfave/cli/v2"
)

// A patch bundle's updates/ folder is staged by package updates, inside
// the bundle's transaction.
func init() { patcher.SetUpdateStager(updates.BundleStager{}) }

func updatesCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "machine-readable output: one JSON object per image a line"}
	return &cli.Command{
		Name:  "updates",
		Usage: "Microsoft update packages (.msu, .cab): which images need them; stage them for the next boot",
		Description: `PACKAGE is a .msu (a cabinet holding the package cabinet, WSUSSCAN.cab,
a -pkgProperties.txt and an .xml) or a .cab servicing package (update.mum
inside). The arguments ending in .msu or .cab come first; the rest are
TARGETs: image files, library directories, or image directories of a mounted tree
(scan only: stage writes the image file as one transaction, so it refuses a
mounted image and names the unmount to run). A patch bundle's updates/ folder
is staged the same way by patch apply. A package whose cabinet or manifest is
damaged is refused before any image is opened.`,
		Subcommands: []*cli.Command{
			{
				Name: "scan", Usage: "tell per image whether each package is installed, not applicable, staged or needed",
				ArgsUsage: "PACKAGE... TARGET...",
				Description: `Per image and package: installed (Component Based Servicing has it, or a newer
version of the same package, in state Installed, or marks it superseded; or,
for a cumulative update, the image's UBR is at or past the revision it brings),
not applicable: <why> (architecture, build, edition, the parent's revision),
staged (offvm put it there; it installs at the next boot), superseded (a newer
version of the same package given in the same run is the one needed or
staged), or needed. An image with a reboot pending
(RebootPending, PendingFileRenameOperations, WinSxS\pending.xml) says so.
Opens images read-only. Exit 1 when an image could not be read.`,
				Flags:  []cli.Flag{jsonFlag, shardFlag(), jobsFlag()},
				Action: updatesScan,
			},
			{
				Name: "stage", Usage: "copy needed packages into each image and register the first-boot service that installs them",
				ArgsUsage: "PACKAGE... TARGET...",
				Description: `For each image, the needed packages are copied to C:\Windows\offvm\staged\<KB>\,
offvm-firstboot.exe (beside offvm, or $OFFVM_FIRSTBOOT) to C:\Windows\offvm\,
the service offvm-firstboot (LocalSystem, automatic) is registered in the
control set Select\Current names, and HKLM\SOFTWARE\offvm\Staged\<KB> records
each package (State "staged"). One transaction per image, recorded as the patch
offvm-updates-<KBs> (offvm rollback undoes it); staging again changes nothing.
At boot the service installs them with DISM (servicing stack first), records
each result in Staged\<KB>, restarts when asked, and removes itself.
offvm never writes Component Based Servicing state: a staged package is
installed only when Windows says so.
Prints per image: staged <KBs>, nothing to stage, would stage (--dry-run), or
failed: <why> (the image is unchanged). Exit 1 when an image failed.`,
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, change nothing"}, jsonFlag, shardFlag(), jobsFlag()},
				Action: updatesStage,
			},
		},
	}
}

// updatesArgs takes the leading .msu/.cab arguments as packages, and the
// images of the TARGETs that are in --shard (see shardTargets), to be
// worked on --jobs at a time.
func updatesArgs(c *cli.Context) (pkgs []string, imgs []patcher.Image, jobs int, err error) {
	args := c.Args().Slice()
	i := 0
	for i < len(args) && isPackageName(args[i]) {
		i++
	}
	if i == 0 || i == len(args) {
		return nil, nil, 0, usagef("usage: offvm updates %s [--shard I/N] [--jobs N] PACKAGE.msu|.cab... TARGET...", c.Command.Name)
	}
	if jobs, err = jobsOf(c); err != nil {
		return nil, nil, 0, err
	}
	sh, err := shardOf(c)
	if err != nil {
		return nil, nil, 0, err
	}
	return args[:i], shardTargets(args[i:], sh), jobs, nil
}

func isPackageName(p string) bool {
	e := strings.ToLower(filepath.Ext(p))
	return e == ".msu" || e == ".cab"
}

func updatesScan(c *cli.Context) error {
	pkgPaths, imgs, jobs, err := updatesArgs(c)
	if err != nil {
		return err
	}
	pkgs, err := updates.OpenPackages(pkgPaths)
	if err != nil {
		return err
	}
	res := updates.Scan(pkgs, imgs, jobs)
	failed := func(r updates.ImageScan) (string, bool) { return r.Image, r.Error != "" }
	return emitPerImage(c, res, failed, printScan, "updates scan could not read ")
}

// emitPerImage writes one result per image, as JSON Lines with --json or as
// text, and exits 1 naming the images whose result failed says failed.
func emitPerImage[T any](c *cli.Context, res []T, failed func(T) (string, bool), print func(io.Writer, T), msg string) error {
	var bad []string
	for _, r := range res {
		if img, ok := failed(r); ok {
			bad = append(bad, img)
		}
		if c.Bool("json") {
			if err := writeJSONLine(c.App.Writer, r); err != nil {
				return err
			}
			continue
		}
		print(c.App.Writer, r)
	}
	if len(bad) > 0 {
		return cli.Exit(msg+strings.Join(bad, ", "), 1)
	}
	return nil
}

func printScan(w io.Writer, r updates.ImageScan) {
	if r.Error != "" {
		fmt.Fprintf(w, "%s: failed: %s\n", r.Image, r.Error)
		return
	}
	for _, v := range r.Verdicts {
		fmt.Fprintln(w, verdictLine(r.Image, v))
	}
	if len(r.Pending) > 0 {
		fmt.Fprintf(w, "%s: reboot pending: %s\n", r.Image, strings.Join(r.Pending, "; "))
	}
}

func verdictLine(image string, v updates.Verdict) string {
	s := fmt.Sprintf("%s: %s: %s", image, v.KB, v.Status)
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	if v.By != "" {
		s += " (" + v.By + ")"
	}
	return s
}

func updatesStage(c *cli.Context) error {
	pkgPaths, imgs, jobs, err := updatesArgs(c)
	if err != nil {
		return err
	}
	pkgs, err := updates.OpenPackages(pkgPaths)
	if err != nil {
		return err
	}
	res := updates.Stage(pkgs, imgs, jobs, updates.StageOptions{DryRun: c.Bool("dry-run")})
	failed := func(r updates.StageResult) (string, bool) { return r.Image, r.Status == updates.StageFailed }
	return emitPerImage(c, res, failed, printStage, "updates stage failed for ")
}

func printStage(w io.Writer, r updates.StageResult) {
	s := r.Image + ": " + r.Status
	switch {
	case r.Reason != "":
		s += ": " + r.Reason
	case len(r.Staged) > 0:
		s += " " + strings.Join(r.Staged, ", ")
	}
	if len(r.Pending) > 0 {
		s += " (reboot pending: " + strings.Join(r.Pending, "; ") + ")"
	}
	fmt.Fprintln(w, s)
	if r.Status == updates.NothingToDo {
		for _, v := range r.Verdicts {
			fmt.Fprintln(w, "  "+strings.TrimPrefix(verdictLine(r.Image, v), r.Image+": "))
		}
	}
	if r.Status == updates.WouldStage {
		for _, ch := range r.Changes {
			fmt.Fprintln(w, "  "+ch.String())
		}
	}
}
