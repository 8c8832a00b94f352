package txn

import (
	"fmt"
	"os"
	"path/filepath"
)

// verifyJournal opens and verifies the journal (or undo or rollback
// record) at jpath.
func verifyJournal(jpath string) (*journal, error) {
	f, err := os.Open(jpath)
	if err != nil {
		return nil, fmt.Errorf("txn: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("txn: %w", err)
	}
	j, err := readJournal(f, fi.Size(), nil)
	if err != nil {
		return nil, fmt.Errorf("txn: %s: %w", jpath, err)
	}
	return j, nil
}

// applyJournal writes a verified journal's regions into the files beside
// image, the new bytes (redo) or the old ones (undo), sets each file's
// length and syncs it, and returns what the files look like then. Both
// directions write absolute bytes and lengths, so applying again after a
// crash half-way gives the same result.
func applyJournal(image, jpath string, undo bool, faultPoint string, pr *progress) (*journal, []fileStat, error) {
	j, err := verifyJournal(jpath)
	if err != nil {
		return nil, nil, err
	}
	if !undo && j.Undo {
		return nil, nil, fmt.Errorf("txn: %s is an undo journal, it holds no new bytes to replay", jpath)
	}
	files, err := openJournalFiles(image, j)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll(files)
	if err := writeRegions(jpath, files, undo, j.Regions, faultPoint, pr); err != nil {
		return nil, nil, err
	}
	stats, err := finishFiles(files, j.Files, undo)
	return j, stats, err
}

// applyInPlace writes the new bytes of a sealed undo journal's regions
// into the files, from the stager that computed them, sets each file's
// new length and syncs it, and returns what the files look like then.
// Every byte it changes lies in a region whose old bytes the journal holds
// (or past a file's old length), which is what makes an interrupted apply
// undoable. Regions close together are written in one call (inPlaceWrites):
// the bytes between them are the same before and after, so writing them
// changes nothing a rollback would have to put back.
func applyInPlace(image string, j *journalWriter, faultPoint string, pr *progress) ([]fileStat, error) {
	files, err := openJournalFiles(image, &journal{Files: j.jfiles})
	if err != nil {
		return nil, err
	}
	defer closeAll(files)
	buf := make([]byte, maxChunk)
	todo := inPlaceWrites(j.todo, j.jfiles)
	half := max(1, len(todo)/2)
	for i, p := range todo {
		b := buf[:p.n]
		if err := j.src[p.file].readNew(b, p.off); err != nil {
			return nil, err
		}
		if _, err := files[p.file].WriteAt(b, p.off); err != nil {
			return nil, fmt.Errorf("txn: write %s at %d: %w", files[p.file].Name(), p.off, err)
		}
		traceWrite(files[p.file].Name(), p.off, b)
		pr.add(p.changed)
		if i+1 == half {
			fault(faultPoint)
			if injectApplyError() {
				return nil, errInjected
			}
		}
	}
	return finishFiles(files, j.jfiles, false)
}

// applyGap is how many unchanged bytes may lie between two regions that
// applyInPlace writes in one call: a commit's regions are often a few
// bytes of each MFT record or index block, thousands of system calls
// when written one by one.
const applyGap = 4096

// inPlaceWrites merges regions of the same file that follow each other
// within applyGap bytes inside its old length (the bytes between them are
// unchanged there: the regions are every difference), up to maxChunk.
func inPlaceWrites(todo []pending, jfiles []jfile) []inPlaceWrite {
	out := make([]inPlaceWrite, 0, len(todo))
	for _, p := range todo {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := last.off + int64(last.n)
			if p.file == last.file && p.off >= end && p.off-end <= applyGap &&
				p.off <= jfiles[p.file].OldLen && p.off+int64(p.n)-last.off <= maxChunk {
				last.n = int(p.off + int64(p.n) - last.off)
				last.changed += p.n
				continue
			}
		}
		out = append(out, inPlaceWrite{p, p.n})
	}
	return out
}

// inPlaceWrite is one write of applyInPlace: regions and the unchanged
// bytes between them; changed counts the regions' bytes (the progress).
type inPlaceWrite struct {
	pending
	changed int
}

func openJournalFiles(image string, j *journal) ([]*os.File, error) {
	dir := filepath.Dir(image)
	files := make([]*os.File, 0, len(j.Files))
	for _, jf := range j.Files {
		// a journal only ever names regular files; refusing anything else
		// keeps a forged one from blocking on a FIFO or writing a device
		if fi, err := os.Stat(filepath.Join(dir, jf.Path)); err == nil && !fi.Mode().IsRegular() {
			closeAll(files)
			return nil, fmt.Errorf("txn: journal names %s, which is not a regular file", jf.Path)
		}
		f, err := os.OpenFile(filepath.Join(dir, jf.Path), os.O_RDWR, 0)
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("txn: open %s to apply its journal: %w", jf.Path, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func writeRegions(jpath string, files []*os.File, undo bool, total int64, faultPoint string, pr *progress) error {
	jf, err := os.Open(jpath)
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	defer jf.Close()
	fi, err := jf.Stat()
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	done, half := int64(0), max(1, total/2)
	_, err = readJournal(jf, fi.Size(), func(r region) error {
		data := r.New
		if undo {
			data = r.Old
		}
		if len(data) > 0 {
			if _, err := files[r.File].WriteAt(data, r.Off); err != nil {
				return fmt.Errorf("txn: write %s at %d: %w", files[r.File].Name(), r.Off, err)
			}
			traceWrite(files[r.File].Name(), r.Off, data)
		}
		pr.add(len(data))
		if done++; done == half {
			fault(faultPoint)
			if !undo && injectApplyError() {
				return errInjected
			}
		}
		return nil
	})
	return err
}

// finishFiles sets each file's final length, syncs it and stats it.
func finishFiles(files []*os.File, jfiles []jfile, undo bool) ([]fileStat, error) {
	stats := make([]fileStat, len(files))
	for i, f := range files {
		n := jfiles[i].NewLen
		if undo {
			n = jfiles[i].OldLen
		}
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("txn: %w", err)
		}
		if fi.Size() != n {
			if err := f.Truncate(n); err != nil {
				return nil, fmt.Errorf("txn: set length of %s: %w", f.Name(), err)
			}
			traceTruncate(f.Name(), n)
		}
		if mt := jfiles[i].OldMtimeNs; undo && mt != 0 {
			// before the fsync, which makes the mtime durable with the bytes
			if err := setMtime(f.Name(), mt); err != nil {
				return nil, err
			}
		}
		if err := fsync(f); err != nil {
			return nil, fmt.Errorf("txn: sync %s: %w", f.Name(), err)
		}
		if fi, err = f.Stat(); err != nil {
			return nil, fmt.Errorf("txn: %w", err)
		}
		stats[i] = fileStat{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	}
	return stats, nil
}
