package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/updates/msutest"
)

type scanLine struct {
	Image   string            `json:"image"`
	Updates []json.RawMessage `json:"updates"`
	Error   string            `json:"error"`
}

func scanLines(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var s scanLine
		must(t, json.Unmarshal([]byte(l), &s))
		if s.Error != "" {
			t.Errorf("%s: %s", s.Image, s.Error)
		}
		if _, dup := got[s.Image]; dup {
			t.Errorf("%s scanned twice in one run", s.Image)
		}
		b, _ := json.Marshal(s.Updates)
		got[s.Image] = string(b)
	}
	return got
}

// TestShardedUpdatesScan: updates scan --shard I/N over a library of
// Windows images (copies of one made by mkntfs and hivex) splits it as
// patch apply does: the shards are disjoint, cover the library, and each
// image's verdicts are those of the unsharded scan; a shard outside 0..N-1
// is a usage error.
func TestShardedUpdatesScan(t *testing.T) {
	msutest.Need(t)
	pk := t.TempDir()
	pkgs := []string{msutest.LCU17763.MSU(t, pk), msutest.LCU17763New.MSU(t, pk)}
	lib := t.TempDir()
	tmpl := filepath.Join(t.TempDir(), "web.img")
	makeUpdatesImage(t, tmpl, "17763", false)
	var imgs []string
	for i := 0; i < 8; i++ {
		p := filepath.Join(lib, fmt.Sprintf("site%d", i%2), fmt.Sprintf("web%d.img", i))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		run(t, "cp", "--sparse=always", tmpl, p)
		imgs = append(imgs, p)
	}
	scan := func(extra ...string) string {
		return mustOffvm(t, append(append(append([]string{"updates", "scan", "--json"}, extra...), pkgs...), lib)...)
	}
	whole := scanLines(t, scan("--jobs", "0"))
	if len(whole) != len(imgs) {
		t.Fatalf("the whole scan lists %d images, want %d", len(whole), len(imgs))
	}
	const shards = 3
	seen := map[string]int{}
	for i := 0; i < shards; i++ {
		for img, verdicts := range scanLines(t, scan("--shard", fmt.Sprintf("%d/%d", i, shards), "--jobs", "2")) {
			seen[img]++
			if verdicts != whole[img] {
				t.Errorf("shard %d: %s: %s, the whole scan says %s", i, img, verdicts, whole[img])
			}
		}
	}
	for _, img := range imgs {
		if seen[img] != 1 {
			t.Errorf("%s is in %d shards, want 1", img, seen[img])
		}
	}
	if r := runOffvm(t, append(append([]string{"updates", "scan", "--shard", "3/3"}, pkgs...), lib)...); r.code != 2 {
		t.Errorf("--shard 3/3: exit %d, want 2 (usage)", r.code)
	}
}
