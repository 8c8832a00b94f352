package registryfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// published is what a writer has finished, seqlock style: gen is odd
// while a change is under way, val is the state after the last finished
// one. A reader that saw the same even gen before and after its read
// must have read exactly val; any reader must see at least the val
// finished before its read began.
type published struct{ gen, val atomic.Int64 }

func (p *published) change(f func() int64) {
	p.gen.Add(1)
	p.val.Store(f())
	p.gen.Add(1)
}

// TestReadersSeeEachChangeAtOnce: through a real FUSE mount with the
// kernel settings of `offvm mount` (minute-long entry and attribute
// timeouts, kept pages, cached listings), 4 readers re-read values and
// listings while 2 writers set a string and a dword (echo > value) and
// make and remove a key with a value in it. A reader never gets a value
// older than the last write finished before its read, nor a listing
// without a key made or with a key removed before it; the writer reads
// its own change back at once; a value is never seen empty or half
// written outside a write (a read racing one may get nothing or a cut
// value, as on any file system: see check). The committed hive then holds each writer's last values, as
// hivexget reads them.
func TestReadersSeeEachChangeAtOnce(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	v := mountView(t, cacheHive(t), false)
	cutDuringWrite.Store(0)
	const writers, rounds = 2, 60
	var str, dword, sub [writers]published
	strPath := func(w int) string { return filepath.Join(v.bench, fmt.Sprintf("Key%02d", w), "Value0") }
	dwordPath := func(w int) string { return filepath.Join(v.bench, fmt.Sprintf("Key%02d", w), "Value1") }
	parent := func(w int) string { return filepath.Join(v.bench, fmt.Sprintf("Key%02d", 10+w)) }
	for w := range writers { // the state before: what the hive holds
		for _, p := range []string{strPath(w), dwordPath(w)} {
			if _, err := os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
		}
		str[w].val.Store(-1)
		dword[w].val.Store(1<<8 | int64(w)) // cacheHive's dword of key w, value 1
	}

	var done atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for n := 0; !done.Load() || n == 0; n++ {
				for w := range writers {
					check(t, r, &str[w], strPath(w), func(b []byte) (int64, bool) {
						if string(b) == fmt.Sprintf("text 0 of key %d\n", w) {
							return -1, true // the hive's own
						}
						s, ok := strings.CutPrefix(string(b), "text ")
						if !ok {
							return 0, false
						}
						i, err := strconv.ParseInt(strings.TrimSuffix(s, "\n"), 10, 64)
						return i, err == nil && strings.HasSuffix(s, "\n")
					})
					check(t, r, &dword[w], dwordPath(w), func(b []byte) (int64, bool) {
						i, err := strconv.ParseInt(strings.TrimSuffix(string(b), "\n"), 10, 64)
						return i, err == nil && strings.HasSuffix(string(b), "\n")
					})
					check(t, r, &sub[w], parent(w), func([]byte) (int64, bool) { return 0, true })
				}
				if n%5 == 0 { // and a scanner's pass over other keys
					readTree(t, filepath.Join(v.bench, fmt.Sprintf("Key%02d", 15+r)))
				}
				if t.Failed() {
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			defer done.Store(true)
			for i := int64(1); i <= rounds && !t.Failed(); i++ {
				str[w].change(func() int64 { write(t, strPath(w), fmt.Sprintf("text %d\n", i)); return i })
				readBack(t, strPath(w), fmt.Sprintf("text %d\n", i))
				dword[w].change(func() int64 { write(t, dwordPath(w), strconv.FormatInt(1000+i, 10)); return 1000 + i })
				readBack(t, dwordPath(w), fmt.Sprintf("%d\n", 1000+i))
				key := filepath.Join(parent(w), "Sub")
				switch i % 10 {
				case 3:
					sub[w].change(func() int64 {
						must(t, os.Mkdir(key, 0o755))
						write(t, filepath.Join(key, "x"), fmt.Sprintf("made in round %d\n", i))
						return 1
					})
					listed(t, parent(w), true)
				case 7:
					sub[w].change(func() int64 {
						must(t, os.Remove(filepath.Join(key, "x")))
						must(t, os.Remove(key))
						return 0
					})
					listed(t, parent(w), false)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("reads that got an empty or cut value while it was being written: %d", cutDuringWrite.Load())
	if t.Failed() {
		return
	}

	// Committed as the volume would be at unmount: hivexget reads the
	// last values and no Sub key (round 57 removed it).
	v.srv.Unmount()
	time.Sleep(10 * time.Millisecond)
	must(t, v.reg.Flush())
	must(t, v.vol.Sync())
	out := filepath.Join(t.TempDir(), "SOFTWARE")
	cmd := exec.Command("mcopy", "-n", "-i", v.img, "::Windows/System32/config/SOFTWARE", out)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, b)
	}
	for w := range writers {
		for _, c := range []struct{ key, value, want string }{
			{fmt.Sprintf(`\Bench\Key%02d`, w), "Value0", fmt.Sprintf("text %d", rounds)},
			{fmt.Sprintf(`\Bench\Key%02d`, w), "Value1", strconv.Itoa(1000 + rounds)},
		} {
			got, err := exec.Command("hivexget", out, c.key, c.value).Output()
			if err != nil || strings.TrimSpace(string(got)) != c.want {
				t.Errorf("hivexget %s %s: %q, %v; want %s", c.key, c.value, got, err, c.want)
			}
		}
		if got, err := exec.Command("hivexget", out, fmt.Sprintf(`\Bench\Key%02d\Sub`, 10+w)).CombinedOutput(); err == nil {
			t.Errorf("hivexget finds Key%02d\\Sub, removed in round 57: %s", 10+w, got)
		}
	}
}

var cutDuringWrite atomic.Int64

// check reads a value (or, for a directory, lists it) and holds it to
// what p published: parse gives a value's number and whether its text
// is whole; a listing's state is whether Sub is in it.
func check(t *testing.T, reader int, p *published, path string, parse func([]byte) (int64, bool)) {
	g1, before := p.gen.Load(), p.val.Load()
	var got int64
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			t.Errorf("reader %d: %v", reader, err)
			return
		}
		if slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "Sub" }) {
			got = 1
		}
		if g2 := p.gen.Load(); g1 == g2 && g1%2 == 0 && got != before {
			t.Errorf("reader %d: %s lists Sub: %v, but the key was %s before and during the listing", reader, path, got == 1, map[int64]string{0: "absent", 1: "there"}[before])
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("reader %d: %v", reader, err)
		return
	}
	n, whole := parse(b)
	g2 := p.gen.Load()
	if !whole {
		// `echo > value` opens with O_TRUNC, and writes: the kernel sets
		// the file's size itself, to 0 after the OPEN (atomic O_TRUNC),
		// to the bytes written after each WRITE, until it asks again.
		// So a read racing the write may get nothing or a cut value, as
		// on any file system; never outside a write.
		if g1 != g2 || g1%2 == 1 {
			cutDuringWrite.Add(1)
			return
		}
		t.Errorf("reader %d: %s reads %q, no write during the read: not a whole value", reader, path, b)
		return
	}
	if n < before {
		t.Errorf("reader %d: %s reads %q, older than %d, written before the read began", reader, path, b, before)
	}
	if g1 == g2 && g1%2 == 0 && n != before {
		t.Errorf("reader %d: %s reads %q, want %d (no write during the read)", reader, path, b, before)
	}
}

func write(t *testing.T, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Errorf("writing %s: %v", path, err)
	}
}

// readBack: the writer's own read, at once, content and size.
func readBack(t *testing.T, path, want string) {
	b, err := os.ReadFile(path)
	st, serr := os.Stat(path)
	if err != nil || serr != nil || string(b) != want || st.Size() != int64(len(want)) {
		t.Errorf("%s just written: %q (%v), size %v (%v); want %q", path, b, err, st.Size(), serr, want)
	}
}

// listed: the writer's own listing and lookup of Sub, at once.
func listed(t *testing.T, parent string, want bool) {
	ents, err := os.ReadDir(parent)
	must(t, err)
	got := slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "Sub" })
	_, serr := os.Stat(filepath.Join(parent, "Sub"))
	if got != want || (serr == nil) != want || (serr != nil && !errors.Is(serr, fs.ErrNotExist)) {
		t.Errorf("%s just after the change: Sub listed %v, stat %v; want there: %v", parent, got, serr, want)
	}
}
