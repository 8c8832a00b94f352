package hive_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/offvm/offvm/registry/hive"
)

// A lazily read clean hive takes memory for the bins it reads, not for its
// size: one lookup in the real 11 MiB SYSTEM hive must allocate a small
// fraction of it (before, opening it alone allocated the whole size).
// This is a bound on bytes allocated, not a timing.
func TestLazyMemoryFollowsPagesRead(t *testing.T) {
	base := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	const key, name = `ControlSet001\Control\ComputerName\ComputerName`, "ComputerName"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h, err := hive.ParseReaderAt(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Data(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("open + one lookup in a %d-byte hive allocated %d bytes (%.2f%%)", len(base), alloc, 100*float64(alloc)/float64(len(base)))
	if alloc*10 >= uint64(len(base)) {
		t.Errorf("open + one lookup allocated %d bytes of a %d-byte hive, want under 10%%", alloc, len(base))
	}
	// Reading the whole hive still gives every key: Serialize assembles it.
	if _, err := h.Serialize(); err != nil {
		t.Fatal(err)
	}
}
