package testutil

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
	"golang.org/x/sys/unix"
)

// Node is what two views of a file system are compared on.
type Node struct {
	Mode   os.FileMode
	Size   int64
	Nlink  uint32
	Sum    [32]byte
	Link   string
	Xattrs map[string]string
}

// KernelTree walks a directory (a kernel mount) with the standard library.
func KernelTree(t testing.TB, root string) map[string]Node {
	t.Helper()
	out := map[string]Node{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		n := Node{Mode: fi.Mode(), Nlink: uint32(st.Nlink), Xattrs: map[string]string{}}
		if fi.Mode().IsRegular() {
			n.Size = fi.Size()
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Sum = sha256.Sum256(b)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			n.Link, _ = os.Readlink(p)
		} else {
			buf := make([]byte, 1<<16)
			if sz, err := unix.Llistxattr(p, buf); err == nil {
				for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
					if name == "" {
						continue
					}
					v := make([]byte, 1<<16)
					vn, _ := unix.Lgetxattr(p, name, v)
					n.Xattrs[name] = string(v[:max(vn, 0)])
				}
			}
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// EngineTree walks an engine from its root the same way; every listed
// entry is also looked up and must agree with the listing.
func EngineTree(t testing.TB, f volume.FS, withXattrs bool) map[string]Node {
	t.Helper()
	out := map[string]Node{}
	var walk func(ino volume.Ino, rel string)
	walk = func(ino volume.Ino, rel string) {
		a, err := f.GetAttr(ino)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		n := Node{Mode: a.Mode, Nlink: a.Nlink, Xattrs: map[string]string{}}
		switch {
		case a.Mode.IsRegular():
			n.Size = a.Size
			h := sha256.New()
			buf := make([]byte, 1<<20)
			for off := int64(0); ; {
				m, err := f.ReadAt(ino, buf, off)
				h.Write(buf[:m])
				off += int64(m)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s read: %v", rel, err)
				}
			}
			copy(n.Sum[:], h.Sum(nil))
		case a.Mode&os.ModeSymlink != 0:
			if n.Link, err = f.Readlink(ino); err != nil {
				t.Fatalf("%s readlink: %v", rel, err)
			}
		}
		if withXattrs && a.Mode&os.ModeSymlink == 0 {
			names, err := f.ListXattr(ino)
			if err != nil {
				t.Fatalf("%s listxattr: %v", rel, err)
			}
			for _, name := range names {
				v, err := f.GetXattr(ino, name)
				if err != nil {
					t.Fatalf("%s getxattr %s: %v", rel, name, err)
				}
				n.Xattrs[name] = string(v)
			}
		}
		out[rel] = n
		if a.Mode.IsDir() {
			ents, err := f.ReadDir(ino)
			if err != nil {
				t.Fatalf("%s readdir: %v", rel, err)
			}
			for _, e := range ents {
				if ea, err := f.Lookup(ino, e.Name); err != nil || ea.Ino != e.Ino || ea.Mode&os.ModeType != e.Mode {
					t.Fatalf("%s/%s: lookup %+v %v vs entry %+v", rel, e.Name, ea, err, e)
				}
				walk(e.Ino, filepath.Join(rel, e.Name))
			}
		}
	}
	walk(f.Root(), ".")
	return out
}

// CompareTrees fails on the first few files whose views differ.
func CompareTrees(t testing.TB, want, got map[string]Node) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		w, g := want[k], got[k]
		if w.Mode != g.Mode || w.Size != g.Size || w.Nlink != g.Nlink || w.Sum != g.Sum || w.Link != g.Link || fmt.Sprint(w.Xattrs) != fmt.Sprint(g.Xattrs) {
			t.Errorf("%s: kernel %+v\n offvm %+v", k, w, g)
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
	if len(want) != len(got) {
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("only offvm shows %s", k)
			}
		}
		t.Fatalf("kernel shows %d files, offvm %d", len(want), len(got))
	}
}
