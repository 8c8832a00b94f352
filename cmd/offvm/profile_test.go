package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestStartProfileWritesAProfile: with OFFVM_CPUPROFILE set, a gzipped
// pprof file named for the process appears; without it, nothing does.
func TestStartProfileWritesAProfile(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "cpu")
	name := fmt.Sprintf("%s.%d", prefix, os.Getpid())

	t.Setenv("OFFVM_CPUPROFILE", "")
	startProfile()()
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("profile written without OFFVM_CPUPROFILE: %v", err)
	}

	t.Setenv("OFFVM_CPUPROFILE", prefix)
	startProfile()()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("no profile: %v", err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("%s is not a gzipped pprof profile (%d bytes)", name, len(b))
	}
}
