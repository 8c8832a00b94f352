package hive

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/ulikunitz/xz"
)

// Windows wrote the lh lists of real hives: every hash there must equal
// ours, and every list must already be in our sort order. This checks our
// upcase table, hash and ordering against Windows on tens of thousands of
// real names.
func TestWindowsListRules(t *testing.T) {
	for _, rel := range []string{"regipy/SYSTEM.xz", "regipy/SYSTEM_WIN_10_1709.xz", "regipy/UsrClass.dat.xz", "python-registry/UNICODE_TESTS", "hivex/special"} {
		t.Run(rel, func(t *testing.T) {
			b := readCorpus(t, rel)
			h, err := Parse(append([]byte(nil), b...))
			if err != nil {
				t.Fatal(err)
			}
			var lists, entries int
			var visit func(k *Key)
			visit = func(k *Key) {
				if k.nsub > 0 {
					leaves := []uint32{k.subList}
					if c, _ := h.cell(k.subList); string(c[:2]) == "ri" {
						leaves, _ = listEntries(c, 4, 0, k.subList)
					}
					var prev []uint16
					for _, lo := range leaves {
						c, _ := h.cell(lo)
						n := int(binary.LittleEndian.Uint16(c[2:]))
						lists++
						for i := 0; i < n; i++ {
							off := binary.LittleEndian.Uint32(c[4+8*i:])
							sub, err := h.parseKey(off, k)
							if err != nil {
								t.Fatal(err)
							}
							units := upcaseUnits(sub.name)
							if prev != nil && compareUnits(prev, units) >= 0 {
								t.Errorf("%q: Windows sorted %q after a name we order later", k.Path(), sub.name)
							}
							prev = units
							if string(c[:2]) == "lf" {
								entries++
								if got, want := nameHint(sub.name), c[8+8*i:12+8*i]; string(got) != string(want) {
									t.Errorf("%q: hint %x, Windows wrote %x", sub.name, got, want)
								}
							}
							if string(c[:2]) == "lh" {
								entries++
								if got, want := nameHash(sub.name), binary.LittleEndian.Uint32(c[8+8*i:]); got != want {
									t.Errorf("%q: hash %08x, Windows wrote %08x", sub.name, got, want)
								}
							}
						}
					}
				}
				subs, err := k.Subkeys()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range subs {
					visit(s)
				}
			}
			visit(h.Root())
			t.Logf("%d lists, %d lh/lf entries checked", lists, entries)
		})
	}
}

var (
	corpusMu    sync.Mutex
	corpusCache = map[string][]byte{}
)

// readCorpus returns a corpus file's bytes, decompressed with the xz
// reader once: in memory for this run and in the user's cache directory for
// the next runs (xz decompression of the big hives is the slowest part of
// the tests, above all under -race). Callers must not modify the result.
func readCorpus(t testing.TB, rel string) []byte {
	t.Helper()
	p := testutil.Corpus(t, rel)
	corpusMu.Lock()
	defer corpusMu.Unlock()
	if b, ok := corpusCache[rel]; ok {
		return b
	}
	if filepath.Ext(rel) != ".xz" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		corpusCache[rel] = b
		return b
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	cached := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(dir, "offvm-test-corpus", fmt.Sprintf("%s-%d-%d", strings.ReplaceAll(rel, "/", "_"), fi.Size(), fi.ModTime().Unix()))
		if b, err := os.ReadFile(cached); err == nil {
			corpusCache[rel] = b
			return b
		}
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := xz.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if cached != "" && os.MkdirAll(filepath.Dir(cached), 0o755) == nil {
		tmp := cached + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			os.Rename(tmp, cached)
		}
	}
	corpusCache[rel] = b
	return b
}
