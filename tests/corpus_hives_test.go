package tests

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registryfs"
	"github.com/ulikunitz/xz"
)

// hiveKey is one key as python3-hivex reports it.
type hiveKey struct {
	Path   []string `json:"path"`
	Values []struct {
		Name string `json:"name"`
		Type uint32 `json:"type"`
		Data string `json:"data"`
	} `json:"values"`
}

func hivexDump(t *testing.T, hive string, limit int) []hiveKey {
	t.Helper()
	script := filepath.Join(testutil.ModuleRoot(), "tests", "testdata", "hivedump.py")
	out, err := exec.Command("/usr/bin/python3", script, hive, strconvItoa(int64(limit))).Output()
	if err != nil {
		t.Skipf("python3-hivex cannot dump %s: %v", hive, err)
	}
	var keys []hiveKey
	if err := json.Unmarshal(out, &keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

func corpusHive(t *testing.T, rel string) string {
	t.Helper()
	src := testutil.Corpus(t, rel)
	dst := filepath.Join(t.TempDir(), "hive")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(rel) == ".xz" {
		r, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r); err != nil {
			t.Fatal(err)
		}
		b = buf.Bytes()
	}
	must(t, os.WriteFile(dst, b, 0o644))
	return dst
}

// TestCorpusHivesThroughView places real hives (Windows 7 SYSTEM with
// 30,756 keys, hivex's special names with a NUL, Unicode and reorganised
// hives) in an image as its SOFTWARE hive and compares every key and
// value the view shows with what python3-hivex reads from the same file.
func TestCorpusHivesThroughView(t *testing.T) {
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	hives := []struct {
		rel   string
		limit int
	}{
		{"hivex/special", 0}, {"regipy/SYSTEM.xz", 4000}, {"plaso/NTUSER-WIN7.DAT", 0},
		{"python-registry/UNICODE_TESTS", 0}, {"python-registry/REORGANIZED_VALUES_TESTS", 0},
	}
	lib := t.TempDir()
	var names []string
	for i, h := range hives {
		p := corpusHive(t, h.rel)
		ntfs := makeNTFS(t, 48, "W", func(dir string) {
			cfg := filepath.Join(dir, "Windows", "System32", "config")
			must(t, os.MkdirAll(cfg, 0o755))
			run(t, "cp", p, filepath.Join(cfg, "SOFTWARE"))
		})
		name := "h" + strconvItoa(int64(i)) + ".img"
		makeDisk(t, filepath.Join(lib, name), "gpt", []part{{sizeMiB: 48, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
		names = append(names, name)
	}
	mnt := mountLib(t, lib, "--ro")
	for i, h := range hives {
		t.Run(h.rel, func(t *testing.T) {
			limit := h.limit
			if limit == 0 {
				limit = 1 << 30
			}
			keys := hivexDump(t, corpusHive(t, h.rel), limit)
			root := filepath.Join(mnt, names[i], "registry", "HKLM", "SOFTWARE")
			values := 0
			children := map[string]map[string]bool{} // key path → its subkeys' names, lower case
			for _, k := range keys {
				if len(k.Path) > 0 {
					parent := strings.Join(k.Path[:len(k.Path)-1], "\x00")
					if children[parent] == nil {
						children[parent] = map[string]bool{}
					}
					children[parent][strings.ToLower(k.Path[len(k.Path)-1])] = true
				}
			}
			for _, k := range keys {
				dir := root
				for _, part := range k.Path {
					dir = filepath.Join(dir, registryfs.EncodeName(part, false))
				}
				if _, err := os.Stat(dir); err != nil {
					t.Errorf("key %q: %v", k.Path, err)
					continue
				}
				for _, v := range k.Values {
					file := registryfs.EncodeName(v.Name, true)
					if children[strings.Join(k.Path, "\x00")][strings.ToLower(v.Name)] {
						file = registryfs.EncodeShadowed(v.Name)
					}
					p := filepath.Join(dir, file)
					data, _ := hex.DecodeString(v.Data)
					got, err := os.ReadFile(p)
					if err != nil {
						t.Errorf("value %q in %q: %v", v.Name, k.Path, err)
						continue
					}
					if want := registryfs.Render(v.Type, data); !bytes.Equal(got, want) {
						t.Errorf("value %q in %q: %q, hivex says %q", v.Name, k.Path, clipBytes(got), clipBytes(want))
					}
					if typ := xattr(t, p, "user.reg.type"); typ != registryfs.TypeName(v.Type) {
						t.Errorf("value %q in %q: type %s, hivex says %s", v.Name, k.Path, typ, registryfs.TypeName(v.Type))
					}
					values++
				}
			}
			t.Logf("%d keys, %d values compared", len(keys), values)
		})
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
