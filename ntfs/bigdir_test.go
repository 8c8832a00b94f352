package ntfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// A directory shaped like Windows\System32: tens of thousands of long
// names, so that ntfs-3g makes its index $BITMAP non-resident and its
// $INDEX_ALLOCATION long.

const bigDirNames = 40000

func sys32Name(i int) string {
	return fmt.Sprintf("microsoft-windows-component-servicing-%05d-long-file-name-for-system32.dll", i)
}

// bigDirImage makes Windows/System32 with n long names through one
// ntfs-3g mount (xargs touch: a few processes, not one per name), with a
// few files holding data and Windows/WinSxS hard links to some of them.
func bigDirImage(t testing.TB, dir string, n int) string {
	t.Helper()
	img := mkntfsImage(t, dir, 512, 4096)
	mnt, unmount := mount3g(t, img)
	sys := filepath.Join(mnt, "Windows", "System32")
	if err := os.MkdirAll(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for i := 0; i < n; i++ {
		names.WriteString(sys32Name(i) + "\n")
	}
	cmd := exec.Command("xargs", "touch")
	cmd.Dir, cmd.Stdin = sys, &names
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("touch %d names: %v\n%s", n, err, out)
	}
	sxs := filepath.Join(mnt, "Windows", "WinSxS")
	for i := 0; i < 20; i++ {
		p := filepath.Join(sys, sys32Name(i*7))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 100+i*3000), 0o644); err != nil {
			t.Fatal(err)
		}
		comp := filepath.Join(sxs, fmt.Sprintf("amd64_microsoft-windows-component_31bf3856ad364e35_10.0.17763.%04d_none", i))
		if err := os.MkdirAll(comp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(p, filepath.Join(comp, fmt.Sprintf("component-%02d.dll", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A file with 8 long hard links (a WinSxS component file's shape: its
	// names no longer fit its record, so they move to extension records),
	// and named streams on a few files.
	shared := filepath.Join(sys, sharedName)
	if err := os.WriteFile(shared, bytes.Repeat([]byte("shared component "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		comp := filepath.Join(sxs, sxsComp(i))
		if err := os.MkdirAll(comp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(shared, filepath.Join(comp, sharedName)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		testutil.Run(t, "setfattr", "-n", "user.Zone.Identifier", "-v", fmt.Sprintf("[ZoneTransfer] %d", i), filepath.Join(sys, sys32Name(i*7)))
	}
	// Named streams on many files, as Windows leaves them (Zone.Identifier
	// on every downloaded file): 1,000 System32 files with one each.
	for i := 0; adsName(i) < n && i < adsFiles; i++ {
		p := filepath.Join(sys, sys32Name(adsName(i)))
		if err := syscall.Setxattr(p, "user.Zone.Identifier", zoneID(i), 0); err != nil {
			t.Fatalf("ntfs-3g: a named stream on %s: %v", p, err)
		}
	}
	// WinSxS: 2,000 component folders, each hard-linking a System32 file.
	for i := 20; i < 2000; i++ {
		comp := filepath.Join(sxs, fmt.Sprintf("amd64_microsoft-windows-component_31bf3856ad364e35_10.0.17763.%04d_none", i))
		if err := os.Mkdir(comp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(sys, sys32Name(i*13%n)), filepath.Join(comp, "component.dll")); err != nil {
			t.Fatal(err)
		}
	}
	unmount()
	return img
}

const sharedName = "microsoft-windows-shared-component-file-with-a-long-name-kept-by-winsxs.dll"

// adsFiles files of System32 carry a named stream: adsName(i) is the
// index of the i-th (names 17, 57, 97 ...: none the workload edits
// otherwise).
const adsFiles = 1000

func adsName(i int) int { return 17 + 40*i }

func zoneID(i int) []byte {
	return []byte(fmt.Sprintf("[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=https://downloads.example.com/%d\r\n", i))
}

func sxsComp(i int) string {
	return fmt.Sprintf("amd64_microsoft-windows-shared-component-servicing_31bf3856ad364e35_10.0.17763.%04d_none_0123456789abcdef", i)
}

// bigDirOp is one step of the workload, done both ways.
type bigDirOp struct {
	name string
	host func(root string) error               // through an ntfs-3g mount
	eng  func(v *Volume, sys volume.Ino) error // through our engine
}

func engLookup(v *Volume, dir volume.Ino, name string) (volume.Ino, error) {
	a, err := v.Lookup(dir, name)
	return a.Ino, err
}

func bigDirWorkload() []bigDirOp {
	sys := "Windows/System32/"
	var ops []bigDirOp
	content := bytes.Repeat([]byte("patched by offvm "), 300)
	ops = append(ops, bigDirOp{"overwrite",
		func(root string) error { return os.WriteFile(filepath.Join(root, sys, sys32Name(100)), content, 0o644) },
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(100))
			if err == nil {
				_, err = v.WriteAt(ino, content, 0)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"append",
		func(root string) error {
			f, err := os.OpenFile(filepath.Join(root, sys, sys32Name(7)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			f.Write(content)
			return f.Close()
		},
		func(v *Volume, d volume.Ino) error {
			a, err := v.Lookup(d, sys32Name(7))
			if err == nil {
				_, err = v.WriteAt(a.Ino, content, a.Size)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"truncate",
		func(root string) error { return os.Truncate(filepath.Join(root, sys, sys32Name(14)), 50) },
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(14))
			if err == nil {
				err = v.Truncate(ino, 50)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"set times",
		func(root string) error {
			tm := time.Date(2020, 2, 11, 10, 0, 0, 0, time.UTC)
			return os.Chtimes(filepath.Join(root, sys, sys32Name(21)), tm, tm)
		},
		func(v *Volume, d volume.Ino) error {
			tm := time.Date(2020, 2, 11, 10, 0, 0, 0, time.UTC)
			ino, err := engLookup(v, d, sys32Name(21))
			if err == nil {
				err = v.SetTimes(ino, &tm, &tm)
			}
			return err
		}})
	ops = append(ops, bigDirOp{"create 300",
		func(root string) error {
			for i := 0; i < 300; i++ {
				if err := os.WriteFile(filepath.Join(root, sys, fmt.Sprintf("new-patch-file-%04d-with-a-long-name.dll", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		func(v *Volume, d volume.Ino) error {
			for i := 0; i < 300; i++ {
				a, err := v.Create(d, fmt.Sprintf("new-patch-file-%04d-with-a-long-name.dll", i), 0o644)
				if err != nil {
					return err
				}
				if _, err := v.WriteAt(a.Ino, []byte(fmt.Sprint(i)), 0); err != nil {
					return err
				}
			}
			return nil
		}})
	ops = append(ops, bigDirOp{"delete 2000",
		func(root string) error {
			for i := 1000; i < 3000; i++ {
				if err := os.Remove(filepath.Join(root, sys, sys32Name(i))); err != nil {
					return err
				}
			}
			return nil
		},
		func(v *Volume, d volume.Ino) error {
			for i := 1000; i < 3000; i++ {
				if err := v.Unlink(d, sys32Name(i)); err != nil {
					return fmt.Errorf("unlink %d: %w", i, err)
				}
			}
			return nil
		}})
	ops = append(ops, bigDirOp{"rename",
		func(root string) error {
			for i := 5000; i < 5050; i++ {
				if err := os.Rename(filepath.Join(root, sys, sys32Name(i)), filepath.Join(root, sys, "renamed-"+sys32Name(i))); err != nil {
					return err
				}
			}
			return os.Rename(filepath.Join(root, sys, sys32Name(6000)), filepath.Join(root, "moved-out.dll"))
		},
		func(v *Volume, d volume.Ino) error {
			for i := 5000; i < 5050; i++ {
				if err := v.Rename(d, sys32Name(i), d, "renamed-"+sys32Name(i)); err != nil {
					return err
				}
			}
			return v.Rename(d, sys32Name(6000), v.Root(), "moved-out.dll")
		}})
	ops = append(ops, bigDirOp{"mkdir and link",
		func(root string) error {
			if err := os.Mkdir(filepath.Join(root, sys, "drivers-new"), 0o755); err != nil {
				return err
			}
			return os.Link(filepath.Join(root, sys, sys32Name(35)), filepath.Join(root, sys, "drivers-new", "linked.dll"))
		},
		func(v *Volume, d volume.Ino) error {
			nd, err := v.Mkdir(d, "drivers-new", 0o755)
			if err != nil {
				return err
			}
			ino, err := engLookup(v, d, sys32Name(35))
			if err == nil {
				_, err = v.Link(ino, nd.Ino, "linked.dll")
			}
			return err
		}})
	ops = append(ops, bigDirOp{"8 hard links: overwrite, unlink one, rename one, add a stream",
		func(root string) error {
			if err := os.WriteFile(filepath.Join(root, sys, sharedName), content, 0o644); err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(root, "Windows/WinSxS", sxsComp(3), sharedName)); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(root, "Windows/WinSxS", sxsComp(5), sharedName), filepath.Join(root, "Windows/WinSxS", sxsComp(5), "renamed-"+sharedName)); err != nil {
				return err
			}
			return syscall.Setxattr(filepath.Join(root, sys, sharedName), "user.offvm", []byte("patched"), 0)
		},
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sharedName)
			if err != nil {
				return err
			}
			if err := v.Truncate(ino, 0); err != nil {
				return err
			}
			if _, err := v.WriteAt(ino, content, 0); err != nil {
				return err
			}
			sxs, err := engLookup(v, v.Root(), "Windows")
			if err == nil {
				sxs, err = engLookup(v, sxs, "WinSxS")
			}
			if err != nil {
				return err
			}
			c3, err := engLookup(v, sxs, sxsComp(3))
			if err != nil {
				return err
			}
			if err := v.Unlink(c3, sharedName); err != nil {
				return err
			}
			c5, err := engLookup(v, sxs, sxsComp(5))
			if err != nil {
				return err
			}
			if err := v.Rename(c5, sharedName, c5, "renamed-"+sharedName); err != nil {
				return err
			}
			return v.SetXattr(ino, "user.offvm", []byte("patched"))
		}})
	// Named streams on 300 of the 1,000 files that have one (20017 up:
	// no other step touches them; "delete 2000" removes 50 others): a
	// third changed, a third removed, a third given a second stream.
	streams := func(set func(p string, i int, value []byte) error, remove func(p string) error) error {
		for i := 500; i < 800; i++ {
			p := sys32Name(adsName(i))
			var err error
			switch i % 3 {
			case 0:
				err = set(p+"\x00user.Zone.Identifier", i, []byte("[ZoneTransfer]\r\nZoneId=4\r\n"))
			case 1:
				err = remove(p + "\x00user.Zone.Identifier")
			default:
				err = set(p+"\x00user.offvm.scan", i, []byte(fmt.Sprintf("clean %d", i)))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	}
	ops = append(ops, bigDirOp{"named streams on 300 files: change, remove, add",
		func(root string) error {
			return streams(func(p string, _ int, value []byte) error {
				file, name, _ := strings.Cut(p, "\x00")
				return syscall.Setxattr(filepath.Join(root, sys, file), name, value, 0)
			}, func(p string) error {
				file, name, _ := strings.Cut(p, "\x00")
				return syscall.Removexattr(filepath.Join(root, sys, file), name)
			})
		},
		func(v *Volume, d volume.Ino) error {
			ino := func(p string) (volume.Ino, string, error) {
				file, name, _ := strings.Cut(p, "\x00")
				i, err := engLookup(v, d, file)
				return i, name, err
			}
			return streams(func(p string, _ int, value []byte) error {
				i, name, err := ino(p)
				if err == nil {
					err = v.SetXattr(i, name, value)
				}
				return err
			}, func(p string) error {
				i, name, err := ino(p)
				if err == nil {
					err = v.RemoveXattr(i, name)
				}
				return err
			})
		}})
	ops = append(ops, bigDirOp{"change a named stream",
		func(root string) error {
			return syscall.Setxattr(filepath.Join(root, sys, sys32Name(28)), "user.Zone.Identifier", []byte("[ZoneTransfer] changed"), 0)
		},
		func(v *Volume, d volume.Ino) error {
			ino, err := engLookup(v, d, sys32Name(28))
			if err == nil {
				err = v.SetXattr(ino, "user.Zone.Identifier", []byte("[ZoneTransfer] changed"))
			}
			return err
		}})
	return ops
}

// TestBigDirectoryWrites runs the workload on a System32 of 40,000 long
// names through our engine and through ntfs-3g on a copy, then compares
// what ntfs-3g and sleuthkit read of both and has ntfsresize check ours.
func TestBigDirectoryWrites(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "ntfsinfo", "ntfs-3g")
	dir := t.TempDir()
	img := bigDirImage(t, dir, bigDirNames)
	info := testutil.Run(t, "ntfsinfo", "-F", "/Windows/System32", img)
	if !strings.Contains(info, "$BITMAP") || !regexpNonResidentBitmap(info) {
		t.Fatalf("System32 index $BITMAP is not non-resident; the test does not test its shape:\n%s", info)
	}
	ref := filepath.Join(dir, "ref.img")
	copyFile(t, img, ref)

	v := openVol(t, img, 0, Options{})
	sys := lookupPath(t, v, "Windows", "System32")
	mnt, unmount := mount3g(t, ref)
	for _, op := range bigDirWorkload() {
		if err := op.eng(v, sys); err != nil {
			t.Fatalf("%s through offvm: %v", op.name, err)
		}
		if err := op.host(mnt); err != nil {
			t.Fatalf("%s through ntfs-3g: %v", op.name, err)
		}
	}
	unmount()
	checkConsistent(t, img)
	for _, p := range []string{"/Windows/System32", "/Windows/System32/" + sharedName} {
		if out := testutil.Run(t, "ntfsinfo", "-F", p, img); !strings.Contains(out, "$ATTRIBUTE_LIST") {
			t.Errorf("ntfsinfo shows no $ATTRIBUTE_LIST for %s: the test misses the shape it is about", p)
		}
	}
	m1, u1 := mount3g(t, img, "ro")
	m2, u2 := mount3g(t, ref, "ro")
	got, want := walkHost(t, m1), walkHost(t, m2)
	diffTrees(t, want, got)
	var st os.FileInfo
	st, err := os.Stat(filepath.Join(m1, "Windows/System32", sys32Name(21)))
	if err != nil || !st.ModTime().Equal(time.Date(2020, 2, 11, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("ntfs-3g reads the mtime set through offvm as %v (%v)", st, err)
	}
	u1()
	u2()
	// The trees are equal (diffTrees); that they hold the shape this is
	// about: 1,000 + 10 files with a stream ntfs-3g made, 50 of them
	// deleted, 100 streams removed, 100 added (links count once a path).
	if n := countStreams(want, "user.Zone.Identifier"); n < adsFiles+10-50-100 {
		t.Errorf("ntfs-3g sees a Zone.Identifier stream on %d paths, want at least %d: the test misses its shape", n, adsFiles+10-50-100)
	}
	if n := countStreams(got, "user.offvm.scan"); n < 100 {
		t.Errorf("ntfs-3g sees the stream offvm added on %d paths, want at least 100", n)
	}
	checkIcat(t, img, got)
	removeAllWith3g(t, img)
}

// countStreams counts the files of a walkHost tree with the named stream.
func countStreams(tree map[string]entry, name string) int {
	n := 0
	for _, e := range tree {
		if _, ok := e.Xattrs[name]; ok {
			n++
		}
	}
	return n
}

// regexpNonResidentBitmap says whether ntfsinfo shows a non-resident $BITMAP.
func regexpNonResidentBitmap(info string) bool {
	_, rest, ok := strings.Cut(info, "Dumping attribute $BITMAP")
	if !ok {
		return false
	}
	_, after, ok := strings.Cut(rest, "Resident:")
	return ok && strings.HasPrefix(strings.TrimSpace(after), "No")
}

// lookupPath walks names from the root of v.
func lookupPath(t testing.TB, v *Volume, names ...string) volume.Ino {
	t.Helper()
	ino := v.Root()
	for _, n := range names {
		a, err := v.Lookup(ino, n)
		if err != nil {
			t.Fatalf("Lookup %s: %v", n, err)
		}
		ino = a.Ino
	}
	return ino
}
