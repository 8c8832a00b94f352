package winreg

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/volume"
)

// Editable returns the hive for a change through the registry view, or
// EROFS when the volume is read-only, or EBUSY when the hive file itself
// was written through the file system view (the two never disagree
// silently: CONTRACT.md).
func (r *Registry) Editable(h *Hive) (*hive.Hive, error) {
	if r.w == nil {
		return nil, fmt.Errorf("registry %s: %s: %w", h.Root, r.readOnly, syscall.EROFS)
	}
	hv, err := h.Load(r.FS)
	if err != nil {
		return nil, err
	}
	if err := hv.ReadOnly(); err != nil {
		return nil, fmt.Errorf("registry %s: %s: %w: %w", h.Root, h.File, err, syscall.EROFS)
	}
	for _, p := range hv.Problems() {
		if errors.Is(p, hive.ErrCorrupt) {
			return nil, fmt.Errorf("registry %s: %s has defects and cannot be written back (%v): %w", h.Root, h.File, p, syscall.EROFS)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.touched {
		return nil, fmt.Errorf("registry %s: %s was changed through the file view; unmount to commit it first: %w", h.Root, h.File, syscall.EBUSY)
	}
	return hv, nil
}

// FileWrite is called before the file system view writes, renames or
// deletes file ino. It fails with EBUSY when ino is a hive (or one of its
// logs) with unsaved changes in the registry view, and otherwise marks the
// hive so the registry view refuses changes from then on.
func (r *Registry) FileWrite(ino volume.Ino) error {
	for _, h := range r.All() {
		if !r.isHiveFile(h, ino) {
			continue
		}
		h.mu.Lock()
		dirty := h.h != nil && h.h.Modified()
		if !dirty {
			if h.h != nil && !h.touched {
				// A loaded hive reads its file lazily: take all of it
				// into memory before the file changes under it, so the
				// view keeps showing one consistent (old) hive.
				h.h.Serialize()
			}
			h.touched = true
		}
		h.mu.Unlock()
		if dirty {
			return fmt.Errorf("%s has unsaved changes in the registry view: %w", h.File, syscall.EBUSY)
		}
	}
	return nil
}

// isHiveFile reports whether ino is h's file or one of its logs.
func (r *Registry) isHiveFile(h *Hive, ino volume.Ino) bool {
	if a, err := volume.Resolve(r.FS, h.File); err == nil && a.Ino == ino {
		return true
	}
	for _, lp := range logPaths(r.FS, h.File) {
		if a, err := volume.Resolve(r.FS, lp); err == nil && a.Ino == ino {
			return true
		}
	}
	return false
}

// Flush writes every hive changed through the registry view back into its
// file on the volume, as a clean compact hive, and resets the logs beside
// it so that Windows will not replay them over the change. Unchanged
// hives are never rewritten.
func (r *Registry) Flush() error {
	if r.w == nil {
		return nil
	}
	var errs []error
	for _, h := range r.All() {
		hv := h.Loaded()
		if hv == nil || !hv.Modified() {
			continue
		}
		if err := r.writeHive(h, hv); err != nil {
			errs = append(errs, fmt.Errorf("writing hive %s: %w", h.File, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Registry) writeHive(h *Hive, hv *hive.Hive) error {
	save, mark, err := hv.SaveChanges()
	if err != nil {
		return err
	}
	if err := r.apply(h.File, save); err != nil {
		return err
	}
	slog.Debug("registry: hive written", "file", h.File, "whole", save.Whole, "bytes", save.Bytes(), "size", save.Size)
	for _, lp := range logPaths(r.FS, h.File) {
		log, err := hive.ResetLog(save.Header, hv.LogFormatOf())
		if err != nil {
			return err
		}
		if err := r.replace(lp, log); err != nil {
			return fmt.Errorf("log %s: %w", lp, err)
		}
	}
	// The view keeps this hive: its model still reads the old bytes (a
	// whole save read all of them into memory; an in-place one copied the
	// bins it changed first, and the others are the same in the new file),
	// so registry writers may hold it, and an edit they make while the
	// bytes were written must stay for the next flush, which dropping the
	// hive would lose.
	hv.Saved(mark)
	return nil
}

// apply writes a hive save into its file: a whole one replaces the
// content, an in-place one writes only the ranges that changed.
func (r *Registry) apply(p string, save hive.Save) error {
	if save.Whole {
		return r.replace(p, save.Writes[0].Data)
	}
	a, err := volume.Resolve(r.FS, p)
	if err != nil {
		return err
	}
	for _, w := range save.Writes {
		if _, err := r.w.WriteAt(a.Ino, w.Data, w.Off); err != nil {
			return err
		}
	}
	return nil
}

// replace overwrites a file's content on the volume.
func (r *Registry) replace(p string, data []byte) error {
	a, err := volume.Resolve(r.FS, p)
	if err != nil {
		return err
	}
	if int64(len(data)) < a.Size {
		if err := r.w.Truncate(a.Ino, int64(len(data))); err != nil {
			return err
		}
	}
	if _, err := r.w.WriteAt(a.Ino, data, 0); err != nil {
		return err
	}
	return nil
}
