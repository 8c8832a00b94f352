// Package guestdiff tells what differs between two images' guests: the
// files of every file system (as virt-diff does) and every registry
// value of a Windows guest, with old and new data. offvm diff uses it
// between two images, and between an image's state before and after one
// commit (txn.HistoryView).
package guestdiff

import (
	"fmt"
	"sort"

	"github.com/offvm/offvm/mount"
)

// Change is one difference: Op "+" (only in B), "-" (only in A), "~"
// (in both, different) or ">" (renamed: From in A is Path in B).
type Change struct {
	Op   string `json:"op"`
	Kind string `json:"kind"`           // file, dir, link, volume, key, value
	Path string `json:"path"`           // p3:/Program Files/x, HKLM\SOFTWARE\Key\Value
	From string `json:"from,omitempty"` // a renamed file's old path
	Size int64  `json:"size,omitempty"`
	Old  string `json:"old,omitempty"` // a value's data, a link's target
	New  string `json:"new,omitempty"`
}

func (c Change) String() string {
	switch {
	case c.Op == ">":
		return fmt.Sprintf("> %s -> %s", c.From, c.Path)
	case c.Kind == "value" && c.Op == "~":
		return fmt.Sprintf("~ %s: %s -> %s", c.Path, c.Old, c.New)
	case c.Kind == "value" && c.Op == "+":
		return fmt.Sprintf("+ %s: %s", c.Path, c.New)
	case c.Kind == "value":
		return fmt.Sprintf("- %s: %s", c.Path, c.Old)
	case c.Kind == "key" || c.Kind == "dir" || c.Kind == "value" || c.Kind == "volume":
		return fmt.Sprintf("%s %s (%s)", c.Op, c.Path, c.Kind)
	case c.Kind == "link":
		return fmt.Sprintf("%s %s -> %s", c.Op, c.Path, c.New+c.Old)
	}
	return fmt.Sprintf("%s %s (%s)", c.Op, c.Path, humanSize(c.Size))
}

// Summary counts the changes: files (and directories, links) and
// registry keys and values.
func Summary(cs []Change) (files, values int) {
	for _, c := range cs {
		if c.Kind == "key" || c.Kind == "value" {
			values++
		} else {
			files++
		}
	}
	return files, values
}

// Images compares the guests of a (before) and b (after).
func Images(a, b *mount.Image) ([]Change, error) { return compare(a, b, &limits{}) }

// Versions compares two states of one image (before and after a
// commit): renames are also found by inode number.
func Versions(a, b *mount.Image) ([]Change, error) { return compare(a, b, &limits{sameVolume: true}) }

// compare is Images within lim.
func compare(a, b *mount.Image, lim *limits) ([]Change, error) {
	out, err := volumes(a, b, lim)
	if err != nil {
		return nil, err
	}
	regs, err := registries(a, b, lim)
	if err != nil {
		return nil, err
	}
	out = append(out, regs...)
	sort.SliceStable(out, func(i, k int) bool {
		if (out[i].Kind == "key" || out[i].Kind == "value") != (out[k].Kind == "key" || out[k].Kind == "value") {
			return out[k].Kind == "key" || out[k].Kind == "value"
		}
		return out[i].Path < out[k].Path
	})
	return out, nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
