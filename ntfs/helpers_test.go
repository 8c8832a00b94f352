package ntfs

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/volume"
)

// fileDev is a volume.Device over a window of a host file.
type fileDev struct {
	f    *os.File
	base int64
	size int64
}

func (d *fileDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, d.base+off) }
func (d *fileDev) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, d.base+off) }
func (d *fileDev) Size() int64                              { return d.size }

func openDev(t testing.TB, path string, base int64) *fileDev {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return &fileDev{f: f, base: base, size: st.Size() - base}
}

func openVol(t testing.TB, path string, base int64, opts Options) *Volume {
	t.Helper()
	v, err := Open(openDev(t, path, base), opts)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	return v
}

// gunzipTemp expands a corpus .gz into the test's temp dir.
func gunzipTemp(t testing.TB, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".gz"))
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// entry is what a tree walk records of one file.
type entry struct {
	Mode   string
	Size   int64
	Hash   string
	Link   string
	Xattrs map[string]string
}

// walkVolume walks our engine's tree into path → entry.
func walkVolume(t testing.TB, v *Volume) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	var walk func(dir volume.Ino, prefix string, depth int)
	walk = func(dir volume.Ino, prefix string, depth int) {
		if depth > 64 {
			t.Fatalf("tree deeper than 64 at %s", prefix)
		}
		ents, err := v.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", prefix, err)
		}
		for _, e := range ents {
			p := prefix + "/" + e.Name
			a, err := v.Lookup(dir, e.Name)
			if err != nil {
				t.Fatalf("Lookup %s: %v", p, err)
			}
			if a.Ino != e.Ino {
				t.Errorf("%s: Lookup ino %d, ReadDir ino %d", p, a.Ino, e.Ino)
			}
			en := entry{Xattrs: map[string]string{}}
			if attr, err := v.GetXattr(a.Ino, "system.ntfs_attrib"); err == nil {
				en.Xattrs["system.ntfs_attrib"] = attribString(attr)
			}
			names, err := v.ListXattr(a.Ino)
			if err != nil {
				t.Fatalf("ListXattr %s: %v", p, err)
			}
			for _, n := range names {
				val, err := v.GetXattr(a.Ino, n)
				if err != nil {
					t.Fatalf("GetXattr %s %s: %v", p, n, err)
				}
				en.Xattrs[n] = string(val)
			}
			switch {
			case a.Mode&os.ModeSymlink != 0:
				en.Mode = "link"
				if en.Link, err = v.Readlink(a.Ino); err != nil {
					t.Fatalf("Readlink %s: %v", p, err)
				}
			case a.Mode.IsDir():
				en.Mode = "dir"
				walk(a.Ino, p, depth+1)
			default:
				en.Mode = "file"
				en.Size = a.Size
				en.Hash = hashIno(t, v, a.Ino, a.Size)
			}
			if en.Mode == "link" { // Interix (ntfs-3g) and reparse links differ here by nature
				delete(en.Xattrs, "system.ntfs_attrib")
			}
			out[p] = en
		}
	}
	walk(v.Root(), "", 0)
	return out
}

func hashIno(t testing.TB, v *Volume, ino volume.Ino, size int64) string {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := v.ReadAt(ino, buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadAt ino %d at %d: %v", ino, off, err)
		}
	}
	if off != size {
		t.Fatalf("ino %d: read %d bytes, size %d", ino, off, size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// walkHost walks a host directory (an ntfs-3g mount) the same way.
func walkHost(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+"/"))
		en := entry{Xattrs: hostXattrs(t, p)}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			en.Mode = "link"
			en.Link, _ = os.Readlink(p)
		case fi.IsDir():
			en.Mode = "dir"
		default:
			en.Mode, en.Size = "file", fi.Size()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			en.Hash = hex.EncodeToString(h.Sum(nil))
		}
		if en.Mode == "link" {
			delete(en.Xattrs, "system.ntfs_attrib")
		}
		out[rel] = en
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(t testing.TB, want, got map[string]entry) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		w, okw := want[k]
		g, okg := got[k]
		if okw != okg || w.Mode != g.Mode || w.Size != g.Size || w.Hash != g.Hash || w.Link != g.Link || !sameXattrs(w.Xattrs, g.Xattrs) {
			if bad++; bad < 20 {
				t.Errorf("%s: want %+v (present %v), got %+v (present %v)", k, w, okw, g, okg)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d paths differ", bad, len(keys))
	}
}

func sameXattrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
