package ntfs

import (
	"fmt"
	"math/rand"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// model is what the random workload knows of the tree, enough to produce
// only operations that must succeed.
type model struct {
	rnd   *rand.Rand
	files map[string]int // path → file identity (hard links share one)
	dirs  map[string]bool
	next  int
}

func (m *model) children(dir string) []string {
	var out []string
	for p := range m.files {
		if path.Dir(p) == dir {
			out = append(out, p)
		}
	}
	for p := range m.dirs {
		if p != dir && path.Dir(p) == dir {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) pick(set map[string]bool) string {
	var keys []string
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[m.rnd.Intn(len(keys))]
}

func (m *model) pickFile() (string, bool) {
	var keys []string
	for k := range m.files {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return "", false
	}
	sort.Strings(keys)
	return keys[m.rnd.Intn(len(keys))], true
}

// freeName returns a new name in dir that no entry has in any case.
func (m *model) freeName(dir string) string {
	for {
		n := fmt.Sprintf("%s%03d%s", []string{"file", "Data", "ÜBER", "名前"}[m.rnd.Intn(4)], m.rnd.Intn(400), []string{"", ".txt", ".DLL", ".bin"}[m.rnd.Intn(4)])
		p := path.Join(dir, n)
		taken := false
		for _, c := range m.children(dir) {
			if strings.EqualFold(c, p) {
				taken = true
			}
		}
		if !taken {
			return p
		}
	}
}

func (m *model) op() wop {
	for {
		switch k := m.rnd.Intn(12); {
		case k < 3:
			p := m.freeName(m.pick(m.dirs))
			m.files[p] = m.next
			m.next++
			return wop{kind: "write", p: p, data: pattern(m.rnd.Intn(3)*m.rnd.Intn(90000), byte(m.rnd.Intn(256)))}
		case k == 3:
			p := m.freeName(m.pick(m.dirs))
			m.dirs[p] = true
			return wop{kind: "mkdir", p: p}
		case k == 4:
			if p, ok := m.pickFile(); ok {
				return wop{kind: "write", p: p, data: pattern(1+m.rnd.Intn(20000), byte(k)), off: int64(m.rnd.Intn(150000))}
			}
		case k == 5:
			if p, ok := m.pickFile(); ok {
				return wop{kind: "trunc", p: p, size: int64(m.rnd.Intn(120000))}
			}
		case k == 6:
			if p, ok := m.pickFile(); ok {
				delete(m.files, p)
				return wop{kind: "unlink", p: p}
			}
		case k == 7:
			d := m.pick(m.dirs)
			if d != "." && len(m.children(d)) == 0 {
				delete(m.dirs, d)
				return wop{kind: "rmdir", p: d}
			}
		case k == 8:
			if p, ok := m.pickFile(); ok {
				q := m.freeName(m.pick(m.dirs))
				m.files[q] = m.files[p]
				delete(m.files, p)
				return wop{kind: "rename", p: p, q: q}
			}
		case k == 9:
			p, ok1 := m.pickFile()
			q, ok2 := m.pickFile()
			if ok1 && ok2 && m.files[p] != m.files[q] {
				m.files[q] = m.files[p]
				delete(m.files, p)
				return wop{kind: "rename", p: p, q: q}
			}
		case k == 10:
			if p, ok := m.pickFile(); ok {
				q := m.freeName(m.pick(m.dirs))
				m.files[q] = m.files[p]
				return wop{kind: "link", p: p, q: q}
			}
		case k == 11:
			if p, ok := m.pickFile(); ok {
				return wop{kind: "xattr", p: p, q: fmt.Sprintf("user.s%d", m.rnd.Intn(3)), data: pattern(m.rnd.Intn(2000)+1, 7)}
			}
		}
	}
}

// TestRandomWorkloads applies seeded random operation sequences through
// our engine and through ntfs-3g and wants the same tree, a consistent
// volume, and ntfs-3g able to delete it all.
func TestRandomWorkloads(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "setfattr", "attr")
	dir := t.TempDir()
	img := mkntfsImage(t, dir, 32, 4096)
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			m := &model{rnd: rand.New(rand.NewSource(seed)), files: map[string]int{}, dirs: map[string]bool{".": true}}
			var ops []wop
			for i := 0; i < 300; i++ {
				o := m.op()
				o.p = strings.TrimPrefix(o.p, "./")
				o.q = strings.TrimPrefix(o.q, "./")
				ops = append(ops, o)
			}
			ref, ours := filepath.Join(dir, fmt.Sprint(seed, ".ref")), filepath.Join(dir, fmt.Sprint(seed, ".ours"))
			copyFile(t, img, ref)
			copyFile(t, img, ours)
			mnt, unmount := mount3g(t, ref)
			applyHost(t, mnt, ops)
			unmount()
			v := openVol(t, ours, 0, Options{})
			applyEngine(t, v, ops)
			checkConsistent(t, ours)
			mnt, unmount = mount3g(t, ref, "ro")
			want := walkHost(t, mnt)
			unmount()
			mnt, unmount = mount3g(t, ours, "ro")
			got := walkHost(t, mnt)
			unmount()
			diffTrees(t, want, got)
			t.Logf("%d operations, %d paths agree with ntfs-3g", len(ops), len(got))
			removeAllWith3g(t, ours)
		})
	}
}
