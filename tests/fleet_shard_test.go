package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type shardResult struct {
	Image, Status, Reason string
	When                  string `json:"applied_at"`
}

// TestShardedPatch: N offvm processes, each with its own --shard I/N, run
// side by side over one library (as N hosts or N Slurm tasks would): every
// image is patched exactly once, by one shard; a shard run again changes
// nothing; each image's record (read with debugfs, its ext4 checked with
// e2fsck) holds the one apply; the shards' inventories (ls --json
// --shard) are disjoint, cover the library, and merge into one report.
func TestShardedPatch(t *testing.T) {
	const images, shards = 24, 4
	lib, imgs := makeFleet(t, images)
	bundle := makeFleetBundle(t)

	outs := make([]bytes.Buffer, shards)
	cmds := make([]*exec.Cmd, shards)
	for i := range cmds {
		cmds[i] = exec.Command(offvm, "-q", "patch", "apply", "--shard", fmt.Sprintf("%d/%d", i, shards), "--jobs", "2", "--json", bundle, lib)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], os.Stderr
		must(t, cmds[i].Start())
	}
	seen := map[string]shardResult{}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i].String())
		}
		var res []shardResult
		if err := jsonLines(outs[i].String(), &res); err != nil {
			t.Fatalf("shard %d output: %v", i, err)
		}
		for _, r := range res {
			if prev, dup := seen[r.Image]; dup {
				t.Errorf("%s patched by two shards: %+v and %+v", r.Image, prev, r)
			}
			if r.Status != "applied" || r.When == "" {
				t.Errorf("shard %d: %+v", i, r)
			}
			seen[r.Image] = r
		}
	}
	if len(seen) != images {
		t.Fatalf("the shards patched %d images of %d", len(seen), images)
	}

	// a retried shard redoes nothing
	sum := sumFile(t, imgs[0])
	again := mustOffvm(t, "-q", "patch", "apply", "--shard", "0/4", "--json", bundle, lib)
	var res []shardResult
	must(t, jsonLines(again, &res))
	for _, r := range res {
		if r.Status != "already applied" || r.When != seen[r.Image].When {
			t.Errorf("retried shard: %+v (first run %+v)", r, seen[r.Image])
		}
	}
	if sumFile(t, imgs[0]) != sum {
		t.Errorf("a retried shard rewrote %s", imgs[0])
	}

	for _, img := range imgs {
		rec := fleetRecord(t, img)
		var r struct{ ID, Applied string }
		if err := json.Unmarshal([]byte(rec), &r); err != nil || r.ID != fleetBundleID || r.Applied != seen[img].When {
			t.Errorf("%s: record %q (%v), shard said %+v", img, rec, err, seen[img])
		}
	}

	checkShardInventories(t, lib, imgs, shards)
}

// checkShardInventories: ls --json of each shard, concatenated, lists
// every image once; report --merge of them reports on all.
func checkShardInventories(t *testing.T, lib string, imgs []string, shards int) {
	var files []string
	listed := map[string]int{}
	for i := 0; i < shards; i++ {
		out := mustOffvm(t, "-q", "ls", "--json", "--shard", fmt.Sprintf("%d/%d", i, shards), lib)
		var infos []struct{ Path string }
		must(t, json.Unmarshal([]byte(out), &infos))
		for _, inf := range infos {
			listed[inf.Path]++
		}
		f := filepath.Join(t.TempDir(), fmt.Sprintf("inv-%d.json", i))
		must(t, os.WriteFile(f, []byte(out), 0o644))
		files = append(files, f)
	}
	for _, img := range imgs {
		if listed[img] != 1 {
			t.Errorf("%s is in %d shard inventories", img, listed[img])
		}
	}
	if len(listed) != len(imgs) {
		t.Errorf("the shard inventories list %d images, the library holds %d", len(listed), len(imgs))
	}
	out := mustOffvm(t, append([]string{"report", "--json", "--merge"}, files...)...)
	var rep struct {
		Library string
		Rows    []struct{ Path, OS string } `json:"images"`
	}
	must(t, json.Unmarshal([]byte(out), &rep))
	if len(rep.Rows) != len(imgs) || rep.Library != lib {
		t.Fatalf("merged report: library %q, %d rows, want %q and %d", rep.Library, len(rep.Rows), lib, len(imgs))
	}
	for _, r := range rep.Rows {
		if !strings.HasPrefix(r.OS, "Debian") {
			t.Errorf("merged report row %+v", r)
		}
	}
	// the merged report says what a report of the whole library says
	whole := mustOffvm(t, "report", lib)
	merged := mustOffvm(t, append([]string{"report", "--merge"}, files...)...)
	if dropGenerated(whole) != dropGenerated(merged) {
		t.Errorf("merged report differs from the library's:\n%s\n---\n%s", merged, whole)
	}
}

func dropGenerated(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(strings.ToLower(l), "generated") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
