package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dustin/go-humanize"
	"github.com/offvm/offvm/guestdiff"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
	"github.com/urfave/cli/v2"
)

// init tells txn what this process's commits are made by, for their
// manifests (the command line is all that knows it), and how to read
// what they change in the guest.
func init() {
	txn.SetCommitNote(noteFromArgs(os.Args))
	txn.SetGuestDiffer(guestdiff.Commit)
	if s := os.Getenv(budgetEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			slog.Warn("ignored: not a duration", "variable", budgetEnv, "value", s, "err", err)
			return
		}
		txn.SetGuestBudget(d)
	}
}

// budgetEnv bounds the time each commit spends listing its guest
// changes ("0" turns the listing off).
const budgetEnv = "OFFVM_HISTORY_BUDGET"

// noteFromArgs names the command that will commit: a mount's daemon
// commits at unmount; patch apply names its bundle's id.
func noteFromArgs(args []string) txn.Note {
	if len(args) > 0 && isMountHelper(args[0]) {
		return txn.Note{Command: "unmount"}
	}
	var words []string
	for _, a := range args[min(1, len(args)):] {
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		return txn.Note{Command: "unknown"}
	}
	switch words[0] {
	case "mount":
		return txn.Note{Command: "unmount"}
	case "reg", "updates":
		if len(words) > 1 {
			return txn.Note{Command: words[0] + " " + words[1]}
		}
	case "patch":
		if len(words) > 1 && words[1] == "apply" {
			// the bundle is the first word naming one (flags' values come before it)
			n := txn.Note{Command: "patch apply"}
			for _, w := range words[2:] {
				if n.Bundle = bundleID(w); n.Bundle != "" {
					break
				}
			}
			return n
		}
	}
	return txn.Note{Command: words[0]}
}

// bundleID reads the id of the bundle in dir, "" when it has none.
func bundleID(dir string) string {
	var m struct {
		ID string `toml:"id"`
	}
	if _, err := toml.DecodeFile(filepath.Join(dir, "patch.toml"), &m); err != nil {
		return ""
	}
	return m.ID
}

func logCommand() *cli.Command {
	return &cli.Command{
		Name:      "log",
		Usage:     "list IMAGE's commits, newest first, and which can still be undone",
		ArgsUsage: "IMAGE",
		Description: `One line per commit: its id, time, what made it (unmount, reg import, patch
apply and the bundle's id, ...), what it changed in the guest (files and
registry keys and values, counted when it committed; 'offvm diff IMAGE ID'
lists them), the bytes and host files it changed, and its state: undoable
('offvm rollback --to ID' undoes it and every later one), "record dropped"
(older than --keep) or "rolled back". A last line says which commits can still
be undone. The history lives in IMAGE.offvm-history beside the image. --keep N
keeps the undo records of the last N commits from now on (default 5) and drops
older ones at once. Each commit spends at most OFFVM_HISTORY_BUDGET (default
60s; 0 turns it off) listing its guest changes; past it, or when the guest
cannot be read, the commit goes on and its record says "changes unknown".`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output"},
			&cli.IntFlag{Name: "keep", Usage: "keep the undo records of the last `N` commits"},
			&cli.BoolFlag{Name: "changes", Usage: "count the guest changes of undoable commits recorded without them (reads the guest twice per commit)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1, "[--json] [--keep N] IMAGE"); err != nil {
				return err
			}
			image := c.Args().Get(0)
			if c.IsSet("keep") {
				if err := setKeep(image, c.Int("keep")); err != nil {
					return err
				}
			}
			cs, err := imageHistory(image)
			if err != nil {
				return err
			}
			if c.Bool("changes") {
				for i := range cs {
					if cs[i].Undoable() && cs[i].Guest == nil {
						if _, err := guestChanges(image, &cs[i]); err != nil {
							return err
						}
					}
				}
			}
			for i := range cs {
				cs[i].Changes = nil // offvm diff lists them
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, cs)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			for _, h := range cs {
				fmt.Fprintln(tw, logLine(h))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(cs) > 0 {
				fmt.Fprintln(c.App.Writer, undoLine(image, cs))
			}
			return nil
		},
	}
}

// imageHistory reads the history, refusing a file that is not there
// (an image with no commits has an empty history).
func imageHistory(image string) ([]txn.HistoryCommit, error) {
	if _, err := os.Stat(image); err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	cs, err := txn.History(image)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		cs = []txn.HistoryCommit{}
	}
	return cs, nil
}

func setKeep(image string, n int) error {
	if n < 1 {
		return usagef("--keep %d: keep at least one undo record", n)
	}
	lock, err := txn.Lock(image)
	if err != nil {
		return fmt.Errorf("%s: cannot change its history: %w", image, err)
	}
	defer lock.Close()
	return txn.SetKeep(image, n)
}

func madeBy(h txn.HistoryCommit) string {
	if h.Note.Bundle != "" {
		return h.Note.Command + " " + h.Note.Bundle
	}
	return h.Note.Command
}

func logLine(h txn.HistoryCommit) string {
	guest := "-"
	switch {
	case h.Guest != nil:
		guest = fmt.Sprintf("%d files, %d values", h.Guest.Files, h.Guest.Values)
	case h.GuestUnknown != "":
		guest = "changes unknown"
	}
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s in %d host files\t%s", h.ID, h.Time.Local().Format("2006-01-02 15:04:05"),
		madeBy(h), guest, humanize.IBytes(uint64(h.Bytes)), len(h.Files), h.State)
}

// undoLine says which commits rollback --to can still undo: the newest
// run of undoable ones (an older undoable commit behind a dropped record
// cannot be reached).
func undoLine(image string, cs []txn.HistoryCommit) string {
	var ids []string
	oldest := 0
	for _, h := range cs {
		if h.State == "rolled back" {
			continue
		}
		if !h.CanUndo {
			break
		}
		ids, oldest = append(ids, strconv.Itoa(h.ID)), h.ID
	}
	if len(ids) == 0 {
		return "no commit can be undone"
	}
	return fmt.Sprintf("can be undone: %s (offvm rollback --to %d undoes them all); undo records are kept for the last %d commits (--keep)",
		strings.Join(ids, ", "), oldest, txn.KeepOf(image))
}

// guestChanges computes what commit h changed in the guest and keeps the
// counts in its manifest (when the image's lock can be had: a mount may
// hold it, and then the counts are simply not kept).
func guestChanges(image string, h *txn.HistoryCommit) ([]guestdiff.Change, error) {
	changes, err := commitChanges(image, h.ID)
	if err != nil {
		return nil, err
	}
	files, values := guestdiff.Summary(changes)
	h.Guest = &txn.GuestSummary{Files: files, Values: values}
	if lock, err := txn.Lock(image); err == nil {
		if err := txn.SetGuestSummary(image, h.ID, *h.Guest); err != nil {
			slog.Warn("history: guest summary not kept", "image", image, "err", err)
		}
		lock.Close()
	}
	return changes, nil
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what one commit of IMAGE changed (the newest by default), or what differs between two images' guests",
		ArgsUsage: "IMAGE [COMMIT] | IMAGE_A IMAGE_B",
		Description: `With a COMMIT (an id from 'offvm log'; the newest by default): the host files
the commit wrote (their lengths and the byte ranges written) and what
changed in the guest, as the commit recorded it: every file created (+),
deleted (-), changed (~) or renamed (> old -> new) in each file system, and
every registry key and value, with old and new data
('~ HKLM\SYSTEM\...\Start: 2 -> 4'). For a commit whose record has no list
("changes unknown", or made by an older offvm) the list is computed from the
undo records while they are kept; nothing is written.
With two images: what differs between their guests, files and registry (as
virt-diff does for files), e.g. a patched clone and its template; there a
rename is a file of the same size, mtime and bytes under another name. Files
of the same size and modification time count as unchanged, as rsync's quick
check.`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2, "[--json] IMAGE [COMMIT] | IMAGE_A IMAGE_B"); err != nil {
				return err
			}
			if second := c.Args().Get(1); second != "" {
				if _, err := strconv.Atoi(second); err != nil {
					return diffImages(c, c.Args().Get(0), second)
				}
			}
			image := c.Args().Get(0)
			h, err := findCommit(image, c.Args().Get(1))
			if err != nil {
				return err
			}
			changes, note, err := commitDiff(image, &h)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				h.Changes = nil
				return writeJSON(c.App.Writer, struct {
					txn.HistoryCommit
					Changes []guestdiff.Change `json:"changes"`
				}{h, changes})
			}
			printDiff(c.App.Writer, h)
			if note != "" {
				fmt.Fprintf(c.App.Writer, "(%s)\n", note)
			}
			for _, ch := range changes {
				fmt.Fprintln(c.App.Writer, ch)
			}
			if h.Guest != nil && h.Guest.Omitted > 0 {
				fmt.Fprintf(c.App.Writer, "... and %d more changes the record does not list (%d files, %d values in all)\n", h.Guest.Omitted, h.Guest.Files, h.Guest.Values)
			}
			return nil
		},
	}
}

// commitDiff gives what commit h changed in the guest: the list its
// record keeps (computed when it committed); for a commit recorded
// without one, computed now from the undo records while they are kept.
// note says where the list comes from when it is not the record.
func commitDiff(image string, h *txn.HistoryCommit) ([]guestdiff.Change, string, error) {
	if h.Changes != nil {
		cs, err := guestdiff.Recorded(*h)
		return cs, "", err
	}
	if !h.Undoable() {
		if h.GuestUnknown != "" {
			return nil, h.GuestUnknown, nil
		}
		return nil, "its undo record is gone: the guest's changes cannot be shown", nil
	}
	cs, err := guestChanges(image, h)
	note := "the guest's changes computed now from the undo records"
	if h.GuestUnknown != "" {
		note = h.GuestUnknown + "; " + note
	}
	return cs, note, err
}

// commitChanges opens the image as it was before and after commit id
// and compares the guests.
func commitChanges(image string, id int) ([]guestdiff.Change, error) {
	open := func(before bool) (*mount.Image, *txn.View, error) {
		v, err := txn.HistoryView(image, id, before)
		if err != nil {
			return nil, nil, err
		}
		im, err := mount.Open(image, mount.Options{ReadOnly: true, OpenFile: v.OpenFile})
		if err != nil {
			v.Close()
			return nil, nil, err
		}
		return im, v, nil
	}
	a, va, err := open(true)
	if err != nil {
		return nil, err
	}
	defer va.Close()
	defer a.Close()
	b, vb, err := open(false)
	if err != nil {
		return nil, err
	}
	defer vb.Close()
	defer b.Close()
	return guestdiff.Versions(a, b)
}

// diffImages prints what differs between two images' guests.
func diffImages(c *cli.Context, pa, pb string) error {
	a, err := mount.Open(pa, mount.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := mount.Open(pb, mount.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer b.Close()
	cs, err := guestdiff.Images(a, b)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if cs == nil {
			cs = []guestdiff.Change{}
		}
		return writeJSON(c.App.Writer, cs)
	}
	for _, ch := range cs {
		fmt.Fprintln(c.App.Writer, ch)
	}
	files, values := guestdiff.Summary(cs)
	fmt.Fprintf(c.App.Writer, "%d files, %d registry keys and values differ\n", files, values)
	return nil
}

// findCommit picks commit arg ("" for the newest) of image's history.
func findCommit(image, arg string) (txn.HistoryCommit, error) {
	cs, err := imageHistory(image)
	if err != nil {
		return txn.HistoryCommit{}, err
	}
	if len(cs) == 0 {
		return txn.HistoryCommit{}, fmt.Errorf("%s has no commits in its history", image)
	}
	if arg == "" {
		return cs[0], nil
	}
	id, err := strconv.Atoi(arg)
	if err != nil {
		return txn.HistoryCommit{}, usagef("COMMIT %q: a commit id from offvm log", arg)
	}
	for _, h := range cs {
		if h.ID == id {
			return h, nil
		}
	}
	return txn.HistoryCommit{}, fmt.Errorf("%s has no commit %d in its history (see offvm log)", image, id)
}

func printDiff(w io.Writer, h txn.HistoryCommit) {
	fmt.Fprintf(w, "commit %d  %s  %s  %s\n", h.ID, h.Time.Local().Format("2006-01-02 15:04:05"), madeBy(h), h.State)
	for _, f := range h.Files {
		fmt.Fprintf(w, "~ %s: %s written in %d ranges, %d -> %d bytes\n", f.Path,
			humanize.IBytes(uint64(f.Bytes)), len(f.Ranges), f.OldLen, f.NewLen)
		const shown = 8 // --json has them all
		for i, r := range f.Ranges {
			if i == shown {
				fmt.Fprintf(w, "    ... %d more ranges\n", len(f.Ranges)-shown)
				break
			}
			fmt.Fprintf(w, "    %#x +%d\n", r[0], r[1])
		}
	}
}

// withRollbackTo gives the rollback command --to COMMIT: undo that commit
// and every later one, as one transaction.
func withRollbackTo(cmd *cli.Command) *cli.Command {
	plain := cmd.Action
	cmd.ArgsUsage = "[--to COMMIT] IMAGE"
	cmd.Description += `
With --to COMMIT (an id from 'offvm log'), undoes that commit and every later
one, newest first, as one transaction that a crash leaves undone or done (the
next offvm command finishes it); refused, writing nothing, when one of them
can no longer be undone or the image changed outside offvm since.`
	cmd.Flags = append(cmd.Flags, &cli.IntFlag{Name: "to", Usage: "undo commit `COMMIT` and every later one"})
	cmd.Action = func(c *cli.Context) error {
		if !c.IsSet("to") {
			return plain(c)
		}
		if err := needArgs(c, 1, 1, "[--to COMMIT] IMAGE"); err != nil {
			return err
		}
		image := c.Args().Get(0)
		lock, err := txn.Lock(image)
		if err != nil {
			return fmt.Errorf("%s: cannot roll back: %w", image, err)
		}
		defer lock.Close()
		ids, err := txn.RollbackTo(image, c.Int("to"))
		if err != nil {
			return err
		}
		undone := make([]string, len(ids))
		for i, id := range ids {
			undone[i] = strconv.Itoa(id)
		}
		fmt.Fprintf(c.App.Writer, "rolled back %s to before commit %d (undid %s)\n", image, c.Int("to"), strings.Join(undone, ", "))
		return nil
	}
	return cmd
}
