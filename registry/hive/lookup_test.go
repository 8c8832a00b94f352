package hive_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// pageReader records which 4 KiB pages of a hive are read: on a cold page
// cache each is an I/O of the image below.
type pageReader struct {
	r     *bytes.Reader
	mu    sync.Mutex
	pages map[int64]bool
}

func (p *pageReader) ReadAt(b []byte, off int64) (int, error) {
	p.mu.Lock()
	for i := off / 4096; len(b) > 0 && i <= (off+int64(len(b))-1)/4096; i++ {
		p.pages[i] = true
	}
	p.mu.Unlock()
	return p.r.ReadAt(b, off)
}

// The keys `offvm ls` reads from a SYSTEM hive (inspect's systemFacts).
var lsKeys = []struct{ key, value string }{
	{`Select`, "Current"},
	{`ControlSet001\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE"},
	{`ControlSet001\Services\Tcpip\Parameters`, "Hostname"},
	{`ControlSet001\Control\ComputerName\ComputerName`, "ComputerName"},
}

// TestLookupByHashReadsLittle: a lookup decodes only the subkey whose lh
// hash is the name's, not every key of a short list nor the probes of a
// binary search. The keys ls reads from the corpus' Windows 7 SYSTEM
// hive (30,756 keys) touch 36 pages without the hashes; the values found
// are hivexget's.
func TestLookupByHashReadsLittle(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	base := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	orig := filepath.Join(t.TempDir(), "SYSTEM")
	writeFile(t, orig, base)
	pr := &pageReader{r: bytes.NewReader(base), pages: map[int64]bool{}}
	h, err := hive.ParseReaderAt(pr, int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range lsKeys {
		k, err := h.Lookup(kv.key)
		if err != nil {
			t.Fatalf("%s: %v", kv.key, err)
		}
		checkValue(t, orig, k, kv.key, kv.value)
	}
	t.Logf("the %d lookups read %d pages of %d", len(lsKeys), len(pr.pages), len(base)/4096)
	if len(pr.pages) > 24 {
		t.Errorf("the lookups read %d pages, want at most 24 (36 without the hashes)", len(pr.pages))
	}
}

// checkValue compares a value found with what hivexget reads for it.
func checkValue(t *testing.T, path string, k *hive.Key, key, name string) {
	t.Helper()
	v, err := k.Value(name)
	if err != nil {
		t.Fatalf(`%s\%s: %v`, key, name, err)
	}
	want := strings.TrimSpace(testutil.Run(t, "hivexget", path, `\`+key, name))
	data, err := v.Data()
	if err != nil {
		t.Fatalf(`%s\%s: %v`, key, name, err)
	}
	got := utf16ToString(data)
	if v.Type() == hive.RegDword && len(data) == 4 {
		got = strconv.Itoa(int(binary.LittleEndian.Uint32(data)))
	}
	if got != want {
		t.Errorf(`%s\%s = %q, hivexget says %q`, key, name, got, want)
	}
}

// TestLookupWrongHashes: the hashes are hints. A hive whose lh hashes are
// all wrong (another tool's bug) still finds every key, by name.
func TestLookupWrongHashes(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	base := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	bad := append([]byte(nil), base...)
	if n := zeroHashes(bad); n == 0 {
		t.Fatal("no lh list found in the hive")
	}
	path := filepath.Join(t.TempDir(), "SYSTEM")
	writeFile(t, path, bad)
	h, err := hive.ParseReaderAt(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range lsKeys {
		k, err := h.Lookup(strings.ToLower(kv.key))
		if err != nil {
			t.Fatalf("%s with wrong hashes: %v", kv.key, err)
		}
		checkValue(t, path, k, kv.key, kv.value)
	}
}

// zeroHashes sets the hash of every element of every allocated lh cell in
// the hive's bins to 0 and returns how many lists it changed.
func zeroHashes(b []byte) int {
	n := 0
	for bin := 4096; bin+32 <= len(b) && string(b[bin:bin+4]) == "hbin"; {
		size := int(binary.LittleEndian.Uint32(b[bin+8:]))
		if size < 4096 || bin+size > len(b) {
			break
		}
		for c := bin + 32; c+8 <= bin+size; {
			cs := int(int32(binary.LittleEndian.Uint32(b[c:])))
			if cs == 0 {
				break
			}
			if cs < 0 && string(b[c+4:c+6]) == "lh" {
				cnt := int(binary.LittleEndian.Uint16(b[c+6:]))
				for i := 0; i < cnt && c+8+i*8+8 <= c-cs; i++ {
					binary.LittleEndian.PutUint32(b[c+8+i*8+4:], 0)
				}
				n++
			}
			if cs < 0 {
				cs = -cs
			}
			c += cs
		}
		bin += size
	}
	return n
}
