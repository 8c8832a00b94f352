package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/urfave/cli/v2"
)

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the images of a library: format, sizes, OS, last update, partitions",
		ArgsUsage: "LIBRARY",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}, shardFlag(), readJobsFlag(), libvirtFlag()},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "[--json] [--shard I/N] [--jobs N] LIBRARY"); err != nil {
				return err
			}
			infos, err := describeLibrary(c, c.Args().Get(0))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, infos)
			}
			return lsTable(c.App.Writer, infos, time.Now())
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return bw.Flush()
}

// lsTable prints one aligned row per image. tabwriter writes each cell
// on its own, so its output is buffered: one write, not 20 per row.
func lsTable(w io.Writer, infos []mount.Info, now time.Time) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tFORMAT\tON DISK\tVIRTUAL\tVM\tOS\tHOST\tLAST UPDATE\tPATCHES\tWRITABLE\tPARTITIONS")
	for _, inf := range infos {
		fmt.Fprintln(tw, lsLine(inf, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

func lsLine(inf mount.Info, now time.Time) string {
	if inf.Error != nil {
		return fmt.Sprintf("%s\terror\t%s\t\t%s\t\t\t\t\t\t%s", inf.Path, sizeOf(inf.Allocated), vmColumn(inf.VM), *inf.Error)
	}
	format := deref(inf.Format)
	if v := deref(inf.Variant); v != "" {
		format += " " + v
	}
	osName, host, last := osColumns(inf.OS, now)
	writable := "yes"
	if !inf.Writable {
		writable = "no: " + deref(inf.ReadOnlyReason)
	}
	return strings.Join([]string{inf.Path, format, sizeOf(inf.Allocated), sizeOf(inf.VirtualSize), vmColumn(inf.VM), osName, host, last,
		fmt.Sprint(len(inf.Patches)), writable, partitionsColumn(inf)}, "\t")
}

// osColumns renders the OS, the host name and the age of the last update.
func osColumns(o any, now time.Time) (string, string, string) {
	os, ok := o.(*inspect.OS)
	if !ok || os == nil {
		return "-", "-", "-"
	}
	name := deref(os.ProductName)
	if name == "" {
		name = os.Family
	}
	if os.Build != nil {
		name += fmt.Sprintf(" (%d", *os.Build)
		if os.UBR != nil {
			name += fmt.Sprintf(".%d", *os.UBR)
		}
		name += ")"
	}
	last := "-"
	if os.LastUpdate != nil {
		if t, err := time.Parse(time.RFC3339, *os.LastUpdate); err == nil {
			last = fmt.Sprintf("%s (%d days)", t.Format("2006-01-02"), int(now.Sub(t).Hours()/24))
		}
	}
	return name, orDash(os.Hostname), last
}

func partitionsColumn(inf mount.Info) string {
	var parts []string
	for _, p := range inf.Partitions {
		s := fmt.Sprintf("p%d %s %s", p.Number, orDash(p.Filesystem), humanize.IBytes(uint64(p.Size)))
		if p.Label != nil {
			s += fmt.Sprintf(" %q", *p.Label)
		}
		if p.Locked {
			s += " (locked)"
		} else if p.Encryption != nil {
			s += " (" + p.Encryption.Type + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func sizeOf(n *int64) string {
	if n == nil {
		return "-"
	}
	return humanize.IBytes(uint64(*n))
}

// vmColumn is the VM a disk belongs to and its state: "web01 (suspended)".
func vmColumn(v any) string {
	vi, ok := v.(*library.VMInfo)
	if !ok || vi == nil {
		return "-"
	}
	name := vi.Name
	if name == "" {
		name = filepath.Base(vi.Config)
	}
	if vi.State != nil {
		name += " (" + *vi.State + ")"
	}
	return name
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}
