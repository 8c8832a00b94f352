package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/offvm/offvm/daemon"
	"github.com/offvm/offvm/inspect"
	"github.com/urfave/cli/v2"
)

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "show every image of LIBRARY as a directory under MOUNTPOINT",
		ArgsUsage: "LIBRARY MOUNTPOINT",
		Description: `LIBRARY is a directory of images (searched recursively) or one image file.
Each image appears as a directory holding disk (the raw virtual disk), p1, p2, ...
(its partitions' file systems), C, D, ... (drive letters), registry/ (a Windows
guest's hives as files) and info.json. offvm returns once the tree is visible and
leaves a daemon serving it. Changes are kept aside until 'offvm unmount
MOUNTPOINT', which commits each changed image as one crash-safe transaction
('offvm rollback IMAGE' undoes it; 'unmount --discard' drops everything).
A plain umount MOUNTPOINT commits too. After make install, mount(8) mounts
a library as well, through the mount.fuse.offvm helper:
  mount -t fuse.offvm LIBRARY MOUNTPOINT -o ro,allow_other,no_secrets,pid_file=FILE
  /srv/vm-library  /mnt/lib  fuse.offvm  allow_other,nofail  0 0   (an fstab line)
The daemon's log (/run/offvm/*.log) is removed after a clean exit.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "ro", Usage: "read-only: nothing is written anywhere"},
			&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "stay in the foreground; Ctrl-C unmounts"},
			&cli.BoolFlag{Name: "allow-other", Usage: "let other users enter the tree (needs user_allow_other in /etc/fuse.conf)"},
			&cli.BoolFlag{Name: "no-secrets", Usage: "leave the SAM and SECURITY hives out of registry/"},
			&cli.StringFlag{Name: "pid-file", Usage: "write the daemon's pid to `FILE`"},
			libvirtFlag(),
			&cli.BoolFlag{Name: "debug-fuse", Usage: "log every FUSE request", Hidden: true},
			&cli.BoolFlag{Name: "quiet-commit", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2, "[--ro] [-f] [--allow-other] [--no-secrets] [--pid-file FILE] LIBRARY MOUNTPOINT"); err != nil {
				return err
			}
			opts := daemon.Options{
				Library: c.Args().Get(0), Mountpoint: c.Args().Get(1),
				ReadOnly: c.Bool("ro"), AllowOther: c.Bool("allow-other"), NoSecrets: c.Bool("no-secrets"),
				PidFile: c.String("pid-file"), Debug: c.Bool("debug-fuse"),
				Info: imageInfo, Drives: inspect.Drives, VMDirs: c.StringSlice("libvirt"),
			}
			if !c.Bool("foreground") {
				return daemon.Spawn(append(daemonArgs(c), "--foreground", opts.Library, opts.Mountpoint), opts.Mountpoint)
			}
			spawned := os.Getenv("OFFVM_READY_FD") != ""
			d, err := daemon.Start(opts)
			daemon.NotifyReady(err)
			if err != nil {
				return err
			}
			sdNotify("READY=1")
			err = d.Wait()
			if spawned && err == nil {
				removeCleanLog(daemon.LogPath(opts.Mountpoint))
			}
			if !spawned && !c.Bool("quiet-commit") {
				for _, l := range d.Lines() {
					fmt.Fprintln(c.App.Writer, l)
				}
			}
			return err
		},
	}
}

// removeCleanLog deletes a background daemon's log after a clean exit,
// unless it holds an error or warning: /run/offvm keeps only the logs
// worth reading.
func removeCleanLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	s := string(b)
	if strings.Contains(s, "level=ERROR") || strings.Contains(s, "level=WARN") || strings.Contains(s, "panic") {
		return
	}
	os.Remove(path)
}

// daemonArgs rebuilds the command line for the background daemon.
func daemonArgs(c *cli.Context) []string {
	var args []string
	if c.Bool("verbose") || isVerbose() {
		args = append(args, "-v")
	}
	args = append(args, "mount")
	args = append(args, "--quiet-commit") // unmount prints the lines
	for _, f := range []string{"ro", "allow-other", "no-secrets", "debug-fuse"} {
		if c.Bool(f) {
			args = append(args, "--"+f)
		}
	}
	if p := c.String("pid-file"); p != "" {
		args = append(args, "--pid-file", p)
	}
	for _, d := range c.StringSlice("libvirt") {
		args = append(args, "--libvirt", d)
	}
	return append(args, keysArg(c)...)
}

func isVerbose() bool {
	for _, a := range os.Args[1:] {
		if a == "-v" || a == "--verbose" {
			return true
		}
		if a == "mount" {
			break
		}
	}
	return false
}

func unmountCommand() *cli.Command {
	return &cli.Command{
		Name:      "unmount",
		Aliases:   []string{"umount"},
		Usage:     "commit every changed image into its file, then unmount",
		ArgsUsage: "MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "discard", Usage: "drop every change instead of committing"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "[--discard] MOUNTPOINT"); err != nil {
				return err
			}
			line := newStatusLine(c)
			err := daemon.Unmount(c.Args().Get(0), c.Bool("discard"), func(l string) {
				line.println(c.App.Writer, l)
			}, line.status)
			line.done()
			return err
		},
	}
}

// isTerminal reports whether f is a terminal (progress is shown only there).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
