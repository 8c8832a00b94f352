package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type cachedRow struct {
	Path        string
	Writable    bool
	Reason      *string `json:"read_only_reason"`
	VirtualSize int64   `json:"virtual_size"`
	Patches     []any
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
	testInventoryCacheOutside(t, lib, imgs)
}

// testInventoryCacheOutside: changes made by other programs. qemu-img
// grows an image: ls shows the new size at once. A qemu holding an image
// makes its cached row read-only (the lock is asked every time), and free
// again once it exits. An image removed leaves the listing.
func testInventoryCacheOutside(t *testing.T, lib string, imgs []string) {
	qcow := imgs[3] // makeFleet makes every 7th image from the 4th qcow2
	var size int64
	rows, _, _ := lsRows(t, lib)
	for _, r := range rows {
		if r.Path == qcow {
			size = r.VirtualSize
		}
	}
	run(t, "qemu-img", "resize", "-q", qcow, "+16M")
	rows, _, hits := lsRows(t, lib)
	if hits != len(imgs)-1 {
		t.Errorf("after one image was resized: %d hits, want %d", hits, len(imgs)-1)
	}
	for _, r := range rows {
		if r.Path == qcow && r.VirtualSize != size+16<<20 {
			t.Errorf("%s after qemu-img resize +16M: virtual size %d, want %d", qcow, r.VirtualSize, size+16<<20)
		}
	}

	q := exec.Command("qemu-io", "-f", "qcow2", qcow)
	stdin, err := q.StdinPipe()
	must(t, err)
	must(t, q.Start())
	held := func() bool {
		rows, _, hits := lsRows(t, lib)
		if hits != len(imgs) {
			t.Errorf("a lock taken changed the cache: %d hits of %d", hits, len(imgs))
		}
		for _, r := range rows {
			if r.Path == qcow {
				return !r.Writable && r.Reason != nil && strings.Contains(*r.Reason, "in use")
			}
		}
		t.Fatalf("%s not listed", qcow)
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !held() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !held() {
		t.Errorf("ls from the cache shows %s writable while qemu-io holds it", qcow)
	}
	stdin.Close()
	q.Wait()
	if held() {
		t.Errorf("ls still shows %s in use after qemu-io exited", qcow)
	}

	must(t, os.Remove(imgs[0]))
	rows, _, _ = lsRows(t, lib)
	if len(rows) != len(imgs)-1 {
		t.Errorf("after removing one image ls lists %d, want %d", len(rows), len(imgs)-1)
	}
	for _, r := range rows {
		if r.Path == imgs[0] {
			t.Errorf("a removed image is still listed")
		}
	}
}
