package fs

import (
	"testing"

	"github.com/offvm/offvm/volume"
)

// lookFS is an engine that says which of its lookups was asked.
type lookFS struct {
	volume.FS
	plain, ahead []string
}

func (l *lookFS) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	l.plain = append(l.plain, name)
	return volume.Attr{Ino: 7}, nil
}

// aheadFS adds LookupAhead to lookFS.
type aheadFS struct{ *lookFS }

func (a aheadFS) LookupAhead(dir volume.Ino, name string) (volume.Attr, error) {
	a.ahead = append(a.ahead, name)
	return volume.Attr{Ino: 8}, nil
}

// TestVolumeLookupAsksAhead: the tree's lookups go to the engine's
// LookupAhead when it has one (the kernel looks names up in a
// directory's order), to Lookup otherwise.
func TestVolumeLookupAsksAhead(t *testing.T) {
	eng := &lookFS{}
	for _, c := range []struct {
		fs   volume.FS
		want volume.Ino
	}{{aheadFS{eng}, 8}, {eng, 7}} {
		vc := &volCtx{fs: c.fs, id: 1}
		if a, err := vc.lookup(5, "x"); err != nil || a.Ino != c.want {
			t.Errorf("%T: lookup gave %d, %v; want %d", c.fs, a.Ino, err, c.want)
		}
	}
	if len(eng.ahead) != 1 || len(eng.plain) != 1 {
		t.Errorf("%d lookups ahead, %d plain; want one each", len(eng.ahead), len(eng.plain))
	}
}
