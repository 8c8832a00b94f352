package txn

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Rollback restores the image at path, byte for byte, to what it was
// before its last commit, and removes the undo record. It refuses, with
// the reason, when any file the commit wrote changed since (length, mtime,
// or the committed bytes no longer in place); checking costs in proportion
// to the commit, not to the image. It is crash-safe: the undo record
// becomes a rollback record before the first byte is restored, and Recover
// finishes a rollback it finds. The caller holds the image's Lock.
func Rollback(path string) error {
	if _, err := Recover(path); err != nil {
		return err
	}
	upath := UndoPath(path)
	if !fileExists(upath) {
		return fmt.Errorf("txn: rollback %s: %w", path, ErrNoUndo)
	}
	j, err := verifyJournal(upath)
	if err != nil {
		return fmt.Errorf("txn: rollback %s: undo record unreadable: %w", path, err)
	}
	if err := checkUnchanged(path, upath, j); err != nil {
		return err
	}
	if err := renameDurably(upath, RollbackPath(path)); err != nil {
		return err
	}
	fault(FaultRollbackMarked)
	return finishRollback(path)
}

// finishRollback writes the old bytes back and drops the record.
func finishRollback(path string) error {
	rpath := RollbackPath(path)
	j, _, err := applyJournal(path, rpath, true, FaultMidRollback, nil)
	if err != nil {
		return fmt.Errorf("txn: roll back %s (the next Recover retries): %w", path, err)
	}
	fault(FaultRollbackDone)
	markRolledBack(path, j.Sum)
	return removeDurably(rpath)
}

// checkUnchanged refuses a rollback over files that changed since the
// commit: the undo record's old bytes would then mix with foreign ones.
func checkUnchanged(image, upath string, j *journal) error {
	if j.Applied == nil {
		return fmt.Errorf("txn: rollback %s: undo record %s was never marked applied", image, upath)
	}
	return checkFiles(image, upath, j, func(i int, f *os.File) error {
		return checkStat(image, f, j.Applied[i])
	})
}

// checkFiles opens each file of the record, checks it with stat (its
// size and mtime against what the record says), then its committed
// regions against its bytes.
func checkFiles(image, rpath string, j *journal, stat func(i int, f *os.File) error) error {
	dir := filepath.Dir(image)
	files := make([]*os.File, len(j.Files))
	defer closeAll(files)
	for i, jf := range j.Files {
		f, err := os.Open(filepath.Join(dir, jf.Path))
		if err != nil {
			return fmt.Errorf("txn: rollback %s: %w", image, err)
		}
		files[i] = f
		if err := stat(i, f); err != nil {
			return err
		}
	}
	return checkRegions(image, rpath, files)
}

func checkStat(image string, f *os.File, want fileStat) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("txn: rollback %s: %w", image, err)
	}
	if fi.Size() != want.Size {
		return fmt.Errorf("txn: rollback %s: %s is %d bytes, was %d after the commit: %w",
			image, filepath.Base(f.Name()), fi.Size(), want.Size, ErrImageChanged)
	}
	if fi.ModTime().UnixNano() != want.MtimeNs {
		return fmt.Errorf("txn: rollback %s: %s was modified at %s, after the commit: %w",
			image, filepath.Base(f.Name()), fi.ModTime().UTC().Format("2006-01-02 15:04:05.000000000"), ErrImageChanged)
	}
	return nil
}

// checkRegions compares every committed region with the file's bytes.
func checkRegions(image, upath string, files []*os.File) error {
	return eachCommitted(upath, func(r region, cur []byte) error {
		n, err := files[r.File].ReadAt(cur, r.Off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("txn: rollback %s: read %s: %w", image, files[r.File].Name(), err)
		}
		if n != len(cur) || !bytes.Equal(cur, r.New) {
			return fmt.Errorf("txn: rollback %s: %s at %d no longer holds the committed bytes: %w",
				image, filepath.Base(files[r.File].Name()), r.Off, ErrImageChanged)
		}
		return nil
	})
}

// eachCommitted calls fn for every region of the undo record at upath,
// with a buffer of the region's length to read the current bytes into;
// fn compares them with r.New. An undo journal's region holds only the
// hash of its new bytes: fn then gets r.New aliased to cur (its compare
// holds trivially, its length check does not), and eachCommitted compares
// the hash of what fn read. Callers need not know which kind they read.
func eachCommitted(upath string, fn func(r region, cur []byte) error) error {
	uf, err := os.Open(upath)
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	defer uf.Close()
	fi, err := uf.Stat()
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	buf := make([]byte, maxChunk)
	var files []jfile
	_, err = readJournal(uf, fi.Size(), func(r region) error {
		cur := buf[:len(r.New)]
		if !r.Undo {
			return fn(r, cur)
		}
		r.New = cur
		if err := fn(r, cur); err != nil {
			return err
		}
		if newSum(cur) != r.Sum {
			if files == nil {
				files, _ = journalFiles(upath)
			}
			return fmt.Errorf("txn: %s at %d no longer holds the committed bytes (undo record %s): %w",
				fileName(files, r.File), r.Off, filepath.Base(upath), ErrImageChanged)
		}
		return nil
	})
	return err
}

// journalFiles lists the files a verified record names.
func journalFiles(path string) ([]jfile, error) {
	j, err := verifyJournal(path)
	if err != nil {
		return nil, err
	}
	return j.Files, nil
}

func fileName(files []jfile, id int) string {
	if id < len(files) {
		return files[id].Path
	}
	return fmt.Sprintf("file %d", id)
}
