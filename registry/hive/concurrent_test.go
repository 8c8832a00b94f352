package hive_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// walkSum walks k's subtree in an order picked by rng and sums every key
// path, class, time, value name, type and data; the sum does not depend on
// the order. Each walker visits keys in its own order, so decoding races
// between them.
func walkSum(t *testing.T, k *hive.Key, rng *rand.Rand) ([32]byte, int) {
	var acc [32]byte
	n := 0
	stack := []*hive.Key{k}
	for len(stack) > 0 {
		i := rng.Intn(len(stack))
		cur := stack[i]
		stack = append(stack[:i], stack[i+1:]...)
		n++
		vals, err := cur.Values()
		if err != nil {
			t.Errorf("values of %s: %v", cur.Path(), err)
			return acc, n
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s|%x|%d", cur.Path(), cur.Class(), cur.LastWritten().UnixNano())
		for _, v := range vals {
			d, err := v.Data()
			if err != nil {
				t.Errorf("data of %s\\%s: %v", cur.Path(), v.Name(), err)
				return acc, n
			}
			fmt.Fprintf(&b, "|%s=%d:%x", v.Name(), v.Type(), d)
		}
		// Look each subkey up by name too: the on-disk search and the
		// name index are filled lazily as well.
		subs, err := cur.Subkeys()
		if err != nil {
			t.Errorf("subkeys of %s: %v", cur.Path(), err)
			return acc, n
		}
		for _, s := range subs {
			if got, err := cur.Subkey(strings.ToUpper(s.Name())); err != nil || got != s {
				t.Errorf("lookup of %s under %s: %v (same object: %v)", s.Name(), cur.Path(), err, got == s)
			}
		}
		stack = append(stack, subs...)
		h := sha256.Sum256(b.Bytes())
		for j := range acc {
			acc[j] ^= h[j]
		}
	}
	return acc, n
}

// TestConcurrentReadersAndWriters runs 6 walkers over a real 11 MiB SYSTEM
// hive read lazily (every walker decodes keys and fills pages the others
// also want) while 2 writers edit keys beside and inside what they walk.
// Run under -race: the walkers must agree with a walk of a hive read alone,
// and the writers' edits must all be in the hive Serialize writes, as
// hivexget reads it.
func TestConcurrentReadersAndWriters(t *testing.T) {
	raw := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	ref, err := hive.Parse(append([]byte(nil), raw...))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ref.Lookup(`ControlSet001\Services`)
	if err != nil {
		t.Fatal(err)
	}
	want, wantN := walkSum(t, cs, rand.New(rand.NewSource(1)))

	h, err := hive.ParseReaderAt(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	const readers, writers, edits = 6, 2, 150
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			k, err := h.Lookup(`ControlSet001\Services`)
			if err != nil {
				t.Error(err)
				return
			}
			got, n := walkSum(t, k, rand.New(rand.NewSource(int64(r+2))))
			if got != want || n != wantN {
				t.Errorf("walker %d: %d keys, sum %x; a lone walk: %d keys, sum %x", r, n, got[:4], wantN, want[:4])
			}
			// The root and Select change under the writers: list them.
			for range 50 {
				if _, err := h.Root().Subkeys(); err != nil {
					t.Error(err)
				}
				if _, err := h.Lookup("Select"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range edits {
				k, err := h.Root().CreatePath(fmt.Sprintf(`offvm-race-%d\k%d`, w, i%10))
				if err != nil {
					t.Error(err)
					return
				}
				if err := k.SetValue("v", hive.RegDword, []byte{byte(i), 0, 0, 0}); err != nil {
					t.Error(err)
				}
				sel, err := h.Lookup("Select")
				if err != nil {
					t.Error(err)
					return
				}
				if err := sel.SetValue(fmt.Sprintf("w%d", w), hive.RegDword, []byte{byte(i), 0, 0, 0}); err != nil {
					t.Error(err)
				}
				if i%7 == 0 {
					if err := k.Parent().DeleteSubkey(k.Name()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	p := filepath.Join(t.TempDir(), "SYSTEM")
	writeFile(t, p, out)
	for w := range writers {
		last := edits - 1
		got, err := exec.Command("hivexget", p, fmt.Sprintf(`\offvm-race-%d\k%d`, w, last%10), "v").Output()
		if err != nil || strings.TrimSpace(string(got)) != fmt.Sprint(last) {
			t.Errorf("hivexget of writer %d's last value: %q, %v; want %d", w, got, err, last)
		}
		got, err = exec.Command("hivexget", p, `\Select`, fmt.Sprintf("w%d", w)).Output()
		if err != nil || strings.TrimSpace(string(got)) != fmt.Sprint(last) {
			t.Errorf("hivexget of Select\\w%d: %q, %v; want %d", w, got, err, last)
		}
	}
}
