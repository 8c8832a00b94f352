package txn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// fatImages makes, with mkfs.vfat and mtools, a FAT image with a few files
// (old) and a copy changed by mtools (new: a file added, one deleted, one
// overwritten, a directory with a file made). It returns both contents and
// the mtools listings of both.
type fatPair struct {
	old, new         []byte
	oldList, newList string
}

func makeFATPair(t *testing.T) fatPair {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "fsck.fat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	src := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := filepath.Join(dir, "a.img")
	testutil.Run(t, "mkfs.vfat", "-C", "-n", "TXNTEST", a, "8192")
	testutil.Run(t, "mcopy", "-i", a, src("hello.txt", []byte("hello, world\n")), "::/hello.txt")
	testutil.Run(t, "mcopy", "-i", a, src("big.bin", randomBytes(20, 300<<10)), "::/big.bin")
	testutil.Run(t, "mcopy", "-i", a, src("keep.txt", []byte("unchanged\n")), "::/keep.txt")
	var p fatPair
	p.old = readFile(t, a)
	b := filepath.Join(dir, "b.img")
	if err := os.WriteFile(b, p.old, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mdel", "-i", b, "::/hello.txt")
	testutil.Run(t, "mcopy", "-i", b, "-o", src("big2.bin", randomBytes(21, 200<<10)), "::/big.bin")
	testutil.Run(t, "mcopy", "-i", b, src("new.txt", []byte("a new file\n")), "::/new.txt")
	testutil.Run(t, "mmd", "-i", b, "::/sub")
	testutil.Run(t, "mcopy", "-i", b, src("inner.bin", randomBytes(22, 70<<10)), "::/sub/inner.bin")
	p.new = readFile(t, b)
	p.oldList = fatList(t, a)
	p.newList = fatList(t, b)
	return p
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fatList is mtools' recursive listing with every file's content hashed
// by mtype, so two listings are equal only when names and bytes are.
func fatList(t *testing.T, image string) string {
	t.Helper()
	names := testutil.Run(t, "mdir", "-i", image, "-/", "-b", "::/")
	var out bytes.Buffer
	for _, name := range bytes.Fields([]byte(names)) {
		content, err := exec.Command("mtype", "-i", image, string(name)).Output()
		if err != nil { // a directory
			out.WriteString(string(name) + "/\n")
			continue
		}
		out.WriteString(string(name) + " " + string(hashHex(content)) + "\n")
	}
	return out.String()
}

func fsckFAT(t *testing.T, image string) {
	t.Helper()
	out, err := exec.Command("fsck.fat", "-n", image).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n %s: %v\n%s", image, err, out)
	}
}

// TestFATCommit: the changed blocks of a FAT volume, written through an
// overlay and committed, give the image mtools made (same sha256),
// fsck.fat finds it clean and mtools lists the new files; Rollback gives
// back the old image.
func TestFATCommit(t *testing.T) {
	p := makeFATPair(t)
	dir := t.TempDir()
	image := filepath.Join(dir, "fat.img")
	if err := os.WriteFile(image, p.old, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := commitTarget(image, "raw", p.new)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commit: %+v", res)
	if !bytes.Equal(readFile(t, image), p.new) {
		t.Fatal("committed image differs from the one mtools made")
	}
	fsckFAT(t, image)
	if got := fatList(t, image); got != p.newList {
		t.Fatalf("mtools lists\n%s\nwant\n%s", got, p.newList)
	}
	if err := Rollback(image); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, image), p.old) {
		t.Fatal("rolled back image differs from the original")
	}
	fsckFAT(t, image)
	if got := fatList(t, image); got != p.oldList {
		t.Fatalf("after rollback mtools lists\n%s\nwant\n%s", got, p.oldList)
	}
}

// TestFATCrash kills FAT commits at every fault point and at random
// moments: after Recover, fsck.fat finds the volume clean and mtools sees
// either all of the changes or none.
func TestFATCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary many times")
	}
	p := makeFATPair(t)
	runCrashCase(t, crashCase{
		format: "raw",
		setup: func(t *testing.T, image string) []byte {
			if err := os.WriteFile(image, p.old, 0o644); err != nil {
				t.Fatal(err)
			}
			return p.new
		},
		check: func(t *testing.T, image string) {
			fsckFAT(t, image)
			if l := fatList(t, image); l != p.oldList && l != p.newList {
				t.Fatalf("mtools lists neither the old nor the new files:\n%s", l)
			}
		},
	}, 8)
}
