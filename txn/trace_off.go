//go:build !offvmfault

package txn

import (
	"io"
	"os"
)

// A release build traces nothing: these compile to nothing.

func traceCreate(string)               {}
func traceWrite(string, int64, []byte) {}
func traceTruncate(string, int64)      {}
func traceRename(string, string)       {}
func traceRemove(string)               {}
func traceSyncDir(string)              {}
func traceFsync(*os.File)              {}
func traceWriter(f *os.File) io.Writer { return f }
