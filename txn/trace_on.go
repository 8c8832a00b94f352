//go:build offvmfault

package txn

import (
	"bytes"
	"io"
	"os"
)

// traceOp is one durable-state operation a transaction makes on a host
// file: what the crash-state explorer (crashstate_test.go) replays to
// build the states a power loss can leave.
type traceOp struct {
	Kind    string // create, write, truncate, fsync, rename, remove, syncdir
	Path    string // absolute; for rename the old name
	NewPath string // rename's new name
	Off     int64
	Data    []byte
	Size    int64 // truncate's length
	MtimeNs int64 // fsync: the file's mtime once synced
}

// traceHook, when set (by a test), receives every traced operation.
var traceHook func(traceOp)

func traceEmit(op traceOp) {
	if traceHook != nil {
		traceHook(op)
	}
}

func traceCreate(path string) { traceEmit(traceOp{Kind: "create", Path: path}) }
func traceWrite(path string, off int64, p []byte) {
	if traceHook != nil {
		traceEmit(traceOp{Kind: "write", Path: path, Off: off, Data: bytes.Clone(p)})
	}
}
func traceTruncate(path string, n int64) { traceEmit(traceOp{Kind: "truncate", Path: path, Size: n}) }
func traceRename(old, new string)        { traceEmit(traceOp{Kind: "rename", Path: old, NewPath: new}) }
func traceRemove(path string)            { traceEmit(traceOp{Kind: "remove", Path: path}) }
func traceSyncDir(dir string)            { traceEmit(traceOp{Kind: "syncdir", Path: dir}) }
func traceFsync(f *os.File) {
	if traceHook == nil {
		return
	}
	op := traceOp{Kind: "fsync", Path: f.Name()}
	if fi, err := f.Stat(); err == nil {
		op.MtimeNs = fi.ModTime().UnixNano()
	}
	traceEmit(op)
}

// tracedWriter traces the sequential writes of a file (the journal).
type tracedWriter struct {
	f   *os.File
	off int64
}

func (w *tracedWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	traceWrite(w.f.Name(), w.off, p[:n])
	w.off += int64(n)
	return n, err
}

func traceWriter(f *os.File) io.Writer { return &tracedWriter{f: f} }
