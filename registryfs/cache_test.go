package registryfs

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/offvm/offvm/fat"
	"github.com/offvm/offvm/internal/noopen"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
)

// requests counts the FUSE requests the kernel sends, by opcode, from
// go-fuse's debug log ("rx 12: LOOKUP n1 ...").
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requests) Write(p []byte) (int, error) {
	s := string(p)
	if i := strings.Index(s, "rx "); i >= 0 {
		if f := strings.Fields(s[i+3:]); len(f) > 1 {
			c.mu.Lock()
			c.n[f[1]]++
			c.mu.Unlock()
		}
	}
	return len(p), nil
}

// take returns the counts since the last take.
func (c *requests) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// cacheHive is a SOFTWARE hive of 20 keys with 5 string and 5 dword
// values each, as the benchmark's, small.
func cacheHive(t *testing.T) []byte {
	h := hive.New("ROOT")
	bench, err := h.Root().CreateSubkey("Bench")
	must(t, err)
	for k := range 20 {
		key, err := bench.CreateSubkey(fmt.Sprintf("Key%02d", k))
		must(t, err)
		for v := range 10 {
			if v%2 == 1 {
				must(t, key.SetValue(fmt.Sprintf("Value%d", v), hive.RegDword, []byte{byte(k), byte(v), 0, 0}))
			} else {
				must(t, key.SetValue(fmt.Sprintf("Value%d", v), hive.RegSz, utf16Bytes(fmt.Sprintf("text %d of key %d", v, k)+"\x00")))
			}
		}
	}
	data, err := h.Serialize()
	must(t, err)
	return data
}

// mountCacheView puts the hive on a FAT volume and serves its registry
// view through real FUSE with the kernel settings `offvm mount` uses
// (fs.Mount): one-minute timeouts, atomic O_TRUNC and, for a
// read-only mount, a read-only super block and zero-message opens.
func mountCacheView(t *testing.T, data []byte, readOnly bool) (string, *requests) {
	v := mountView(t, data, readOnly)
	return v.bench, v.reqs
}

// view is a mounted registry view of one hive on a FAT volume.
type view struct {
	bench string // HKLM/SOFTWARE/Bench in the mount
	reqs  *requests
	reg   *winreg.Registry
	vol   *fat.Volume
	img   string
	srv   *fuse.Server
}

func mountView(t *testing.T, data []byte, readOnly bool) *view {
	dir := t.TempDir()
	img := fatWithHive(t, dir, "SOFTWARE", data)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	vol, err := fat.Open(fileDev{f}, fat.Options{})
	must(t, err)
	var reg *winreg.Registry
	if readOnly {
		reg, err = winreg.Open(vol, nil, "read-only mount", false)
	} else {
		reg, err = winreg.Open(vol, vol, "", false)
	}
	must(t, err)
	mnt := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	reqs := &requests{n: map[string]int{}}
	minute, second := time.Minute, time.Second
	mo := fuse.MountOptions{ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC, Debug: true, Logger: log.New(reqs, "", 0)}
	if readOnly {
		mo.Options = []string{"ro"}
	}
	raw := gofs.NewNodeFS(New(reg, Owner{}), &gofs.Options{MountOptions: mo,
		EntryTimeout: &minute, AttrTimeout: &minute, NegativeTimeout: &second})
	if readOnly {
		raw = noopen.Wrap(raw) // as fs.Mount does for --ro
	}
	srv, err := fuse.NewServer(raw, mnt, &mo)
	must(t, err)
	go srv.Serve()
	must(t, srv.WaitMount())
	t.Cleanup(func() { srv.Unmount() })
	reqs.take() // go-fuse's own poll check at mount (its OPEN never reaches the view)
	return &view{bench: filepath.Join(mnt, "HKLM", "SOFTWARE", "Bench"), reqs: reqs, reg: reg, vol: vol, img: img, srv: srv}
}

// fatWithHive makes dir/vol.img, a FAT32 volume holding data as
// Windows/System32/config/NAME (mtools, so no kernel mount is needed).
func fatWithHive(t *testing.T, dir, name string, data []byte) string {
	img := filepath.Join(dir, "vol.img")
	must(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	testutil.Run(t, "truncate", "-s", "40M", img)
	testutil.Run(t, "mkfs.vfat", "-F", "32", img)
	for _, args := range [][]string{
		{"mmd", "-i", img, "::Windows", "::Windows/System32", "::Windows/System32/config"},
		{"mcopy", "-i", img, filepath.Join(dir, name), "::Windows/System32/config/" + name},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	return img
}

// readTree reads every value under dir as a scanner does (walk, open,
// fstat, read, close) and returns the contents by path.
func readTree(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Stat(); err != nil {
			return err
		}
		b := make([]byte, 4096)
		n, err := f.Read(b)
		if err != nil {
			return err
		}
		out[p] = string(b[:n])
		return nil
	}))
	return out
}

// TestKernelKeepsTheView checks what the view's speed rests on, by the
// requests the kernel sends: on a second pass over a read-only view no
// value is looked up, stat'ed, listed, opened, flushed, released or read
// again (entries, attributes, listings and pages stay in the kernel, and
// it opens without asking: internal/noopen); what is left is
// OPENDIR/RELEASEDIR per key (go-fuse lists a directory only through the
// handle it opens). On a writable view a value written is read back in
// its new form: the kernel's copy was dropped.
func TestKernelKeepsTheView(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	data := cacheHive(t)

	t.Run("second pass", func(t *testing.T) {
		dir, reqs := mountCacheView(t, data, true)
		first := readTree(t, dir)
		if len(first) != 200 {
			t.Fatalf("first pass read %d values, want 200", len(first))
		}
		if got, want := first[filepath.Join(dir, "Key07", "Value3")], "775\n"; got != want {
			t.Errorf("Key07/Value3 = %q, want %q (dword 0x0307)", got, want)
		}
		// one OPEN and one FLUSH, answered ENOSYS: the kernel asks no more
		// (the RELEASE of go-fuse's poll check may land here: see below)
		if n := reqs.take(); n["OPEN"] != 1 || n["FLUSH"] != 1 || n["READ"] != 200 {
			t.Errorf("first pass sent %d OPEN, %d FLUSH, %d READ; want 1, 1, 200 (all: %v)", n["OPEN"], n["FLUSH"], n["READ"], n)
		}
		second := readTree(t, dir)
		n := reqs.take()
		for p, c := range first {
			if second[p] != c {
				t.Errorf("%s: second pass read %q, first %q", p, second[p], c)
			}
		}
		for _, op := range []string{"LOOKUP", "GETATTR", "READ", "READDIR", "READDIRPLUS", "GETXATTR", "OPEN", "FLUSH", "RELEASE"} {
			if n[op] != 0 {
				t.Errorf("second pass sent %d %s requests, want none (all: %v)", n[op], op, n)
			}
		}
		if n["OPENDIR"] != 21 {
			t.Errorf("second pass sent %d OPENDIR, want one per key (all: %v)", n["OPENDIR"], n)
		}
		t.Logf("second pass of 200 values in 21 keys: %v", n)
	})

	t.Run("write drops the kernel's copy", func(t *testing.T) {
		dir, reqs := mountCacheView(t, data, false)
		cases := []struct{ name, write, want string }{
			{"Value1", "0x10\n", "16\n"},             // shorter than the cached "1281\n"
			{"Value3", "4294967295", "4294967295\n"}, // longer
			{"Value0", "new text\n", "new text\n"},   // string
			{"Value2", "a much longer text than before, past the cached size\n", "a much longer text than before, past the cached size\n"},
		}
		key := filepath.Join(dir, "Key05")
		before := readTree(t, key)
		readTree(t, filepath.Join(dir, "Key06"))
		for _, c := range cases {
			p := filepath.Join(key, c.name)
			if before[p] == c.want {
				t.Fatalf("%s already holds %q", c.name, c.want)
			}
			must(t, os.WriteFile(p, []byte(c.write), 0o644))
			reqs.take()
			got, err := os.ReadFile(p)
			must(t, err)
			if string(got) != c.want {
				t.Errorf("%s after writing %q: read %q, want %q", c.name, c.write, got, c.want)
			}
			st, err := os.Stat(p)
			must(t, err)
			if st.Size() != int64(len(c.want)) {
				t.Errorf("%s: size %d, want %d", c.name, st.Size(), len(c.want))
			}
		}
		// Values share their key's last-written time, so the written
		// key's other values are read again (their mtime changed); another
		// key's values are still served by the kernel.
		after := readTree(t, key)
		for p, c := range before {
			if written := strings.Contains("Value0 Value1 Value2 Value3", filepath.Base(p)); !written && after[p] != c {
				t.Errorf("%s changed: %q, was %q", p, after[p], c)
			}
		}
		reqs.take()
		other := readTree(t, filepath.Join(dir, "Key06"))
		if n := reqs.take(); n["READ"] != 0 || len(other) != 10 {
			t.Errorf("re-reading an unwritten key's %d values sent %d READ requests, want none (%v)", len(other), n["READ"], n)
		}
	})
}
