package xfs

import (
	"os"
	"testing"
)

// TestFuzzSeedOpens: the fuzz seed is a file system offvm opens and
// walks, so that mutations start from real structures.
func TestFuzzSeedOpens(t *testing.T) {
	b, err := os.ReadFile("testdata/xfs-seed.bin")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(spread(b))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := fs.ReadDir(fs.Root())
	if err != nil || len(ents) < 2 {
		t.Fatalf("root of the seed: %v %v", ents, err)
	}
}
