package hive

import (
	"bytes"
	"testing"
)

// exercise reads everything a fuzzed hive offers and writes it back; any
// error is fine, a panic or a hang is not.
func exercise(h *Hive) {
	var visit func(k *Key, depth int)
	n := 0
	visit = func(k *Key, depth int) {
		n++
		if n > 5000 {
			return
		}
		vals, _ := k.Values()
		for _, v := range vals {
			v.Data()
		}
		k.Lookup(`a\b`)
		subs, _ := k.Subkeys()
		for _, s := range subs {
			visit(s, depth+1)
		}
	}
	visit(h.Root(), 0)
	if out, err := h.Serialize(); err == nil {
		if _, err := Parse(out); err != nil {
			panic("our own output does not parse: " + err.Error())
		}
	}
}

func FuzzParse(f *testing.F) {
	before, after := twoStates(f)
	f.Add(before)
	f.Add(after)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		h, err := Parse(b)
		if err != nil {
			return
		}
		exercise(h)
	})
}

func FuzzReplay(f *testing.F) {
	before, after := twoStates(f)
	f.Add(dirty(before), newLog(before, after, 2))
	f.Add(dirty(before), oldLog(before, after, 0))
	f.Fuzz(func(t *testing.T, base, log []byte) {
		if len(base) > 1<<20 || len(log) > 1<<20 {
			return
		}
		h, err := Parse(base, log)
		if err != nil {
			return
		}
		exercise(h)
	})
}

func FuzzParseReaderAt(f *testing.F) {
	before, after := twoStates(f)
	f.Add(before)
	f.Add(after)
	f.Add(dirty(before))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		// The size is the file's, then a size the reader cannot honour.
		for _, r := range []*bytes.Reader{bytes.NewReader(b), bytes.NewReader(b[:len(b)*3/4])} {
			h, err := ParseReaderAt(r, int64(len(b)))
			if err != nil {
				continue
			}
			exercise(h)
		}
	})
}

// FuzzSaveInPlace: edits on a fuzzed hive saved with SaveChanges never
// panic, and an in-place save applied to the file parses again with the
// edits in it.
func FuzzSaveInPlace(f *testing.F) {
	before, after := twoStates(f)
	f.Add(before)
	f.Add(after)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		h, err := ParseReaderAt(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		root := h.Root()
		subs, _ := root.Subkeys()
		if len(subs) > 0 {
			subs[0].SetValue("v", RegSz, []byte("fuzzed value data"))
			if len(subs) > 1 {
				root.DeleteSubkey(subs[1].Name())
			}
		}
		if _, err := root.CreateSubkey("offvm-new"); err != nil {
			return
		}
		s, _, err := h.SaveChanges()
		if err != nil || s.Whole {
			return
		}
		out := append([]byte(nil), b...)
		for _, w := range s.Writes {
			if end := int(w.Off) + len(w.Data); end > len(out) {
				out = append(out, make([]byte, end-len(out))...)
			}
			copy(out[w.Off:], w.Data)
		}
		h2, err := Parse(out)
		if err != nil {
			panic("an in-place save does not parse: " + err.Error())
		}
		if _, err := h2.Root().Subkey("offvm-new"); err != nil {
			panic("an in-place save lost its new key: " + err.Error())
		}
	})
}
