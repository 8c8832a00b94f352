package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

type cachedRow struct {
	Path     string
	Writable bool
	Patches  []any
}

func lsRows(t *testing.T, lib string) ([]cachedRow, string, int) {
	t.Helper()
	r := runOffvm(t, "-v", "ls", "--json", lib)
	if r.code != 0 {
		t.Fatalf("ls: exit %d\n%s", r.code, r.err)
	}
	var rows []cachedRow
	must(t, json.Unmarshal([]byte(r.out), &rows))
	return rows, r.out, strings.Count(r.err, "inventory cache hit")
}

// TestInventoryCache: an unchanged library is described from the cache
// (same output, no image opened); an image offvm committed, or one copied
// over, is described afresh, never from a stale entry.
func TestInventoryCache(t *testing.T) {
	lib, imgs := makeFleet(t, 6)
	_, first, hits := lsRows(t, lib)
	if hits != 0 {
		t.Errorf("a first ls hit the cache %d times", hits)
	}
	_, second, hits := lsRows(t, lib)
	if hits != len(imgs) || second != first {
		t.Errorf("unchanged library: %d cache hits of %d, same output %v", hits, len(imgs), second == first)
	}
	if rep := mustOffvm(t, "report", "--json", lib); !strings.Contains(rep, imgs[0]) {
		t.Errorf("report from the cache lacks %s", imgs[0])
	}

	// offvm commits a patch into every image: none may look unpatched
	mustOffvm(t, "-q", "patch", "apply", makeFleetBundle(t), lib)
	rows, _, hits := lsRows(t, lib)
	if hits != 0 {
		t.Errorf("%d images came from the cache after each was committed", hits)
	}
	for _, r := range rows {
		if len(r.Patches) != 1 {
			t.Errorf("%s shows %d patches after the patch was committed", r.Path, len(r.Patches))
		}
	}
	// rolled back by offvm: unpatched again, at once
	mustOffvm(t, "rollback", imgs[1])
	rows, _, _ = lsRows(t, lib)
	for _, r := range rows {
		if want := map[bool]int{true: 0, false: 1}[r.Path == imgs[1]]; len(r.Patches) != want {
			t.Errorf("after rollback of %s: %s shows %d patches", imgs[1], r.Path, len(r.Patches))
		}
	}
	var one struct{ Patches []any }
	must(t, json.Unmarshal([]byte(mustOffvm(t, "inspect", "--json", imgs[1])), &one))
	if len(one.Patches) != 0 {
		t.Errorf("inspect after rollback: %d patches", len(one.Patches))
	}
}
