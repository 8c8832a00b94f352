package fs

import (
	"fmt"
	"slices"
	"testing"

	"github.com/offvm/offvm/volume"
)

// askFS is an engine that records what it is asked to prefetch.
type askFS struct {
	volume.FS
	asked [][]volume.Ino
}

func (a *askFS) Prefetch(inos []volume.Ino) { a.asked = append(a.asked, slices.Clone(inos)) }

// TestDirStreamPrefetchesAhead: a listing of 150 entries asks the engine
// for the metadata of each batch of 64 as readdirplus reaches its first
// entry, in order, never for entries it has not reached the batch of, and
// yields every entry with its number and type as listed.
func TestDirStreamPrefetchesAhead(t *testing.T) {
	eng := &askFS{}
	vc := &volCtx{fs: eng, id: 1}
	var ents []volume.DirEntry
	for i := 0; i < 150; i++ {
		ents = append(ents, volume.DirEntry{Name: fmt.Sprintf("f%03d", i), Ino: volume.Ino(100 + i)})
	}
	ds := newDirStream(vc, ents)
	for i := 0; ds.HasNext(); i++ {
		e, errno := ds.Next()
		if errno != 0 || e.Name != ents[i].Name || e.Ino != vc.fuseIno(ents[i].Ino) {
			t.Fatalf("entry %d: %+v, %v", i, e, errno)
		}
		if want := i/prefetchBatch + 1; len(eng.asked) != want {
			t.Fatalf("after entry %d: %d prefetches, want %d", i, len(eng.asked), want)
		}
	}
	for b, got := range eng.asked {
		lo := b * prefetchBatch
		want := []volume.Ino{}
		for _, e := range ents[lo:min(lo+prefetchBatch, len(ents))] {
			want = append(want, e.Ino)
		}
		if !slices.Equal(got, want) {
			t.Errorf("prefetch %d: %v, want %v", b, got, want)
		}
	}
	// an engine without the capability gets a plain listing
	plain := newDirStream(&volCtx{fs: eng.FS, id: 1}, ents)
	if _, ok := plain.(*prefetchStream); ok {
		t.Error("an engine without Prefetch got a prefetching stream")
	}
}
