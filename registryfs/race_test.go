package registryfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/ulikunitz/xz"

	"github.com/offvm/offvm/fat"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/winreg"
)

// fileDev is a FAT volume in a host file.
type fileDev struct{ f *os.File }

func (d fileDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d fileDev) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }
func (d fileDev) Size() int64                              { st, _ := d.f.Stat(); return st.Size() }

// TestParallelScannersAndWriters mounts the registry view of the real
// 11 MiB Windows 7 SYSTEM hive through real FUSE, in this process so that
// -race sees the view, winreg and the hive: 6 scanners walk and read
// values (each in its own order, as `find | shuf | xargs cat` does) while
// 2 writers set values, make and remove keys. The writers' last values are
// then in the hive written back into the volume, as hivexget reads it.
func TestParallelScannersAndWriters(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	src := filepath.Join(testutil.ModuleRoot(), "..", "shared", "corpus", "regipy", "SYSTEM.xz")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("corpus absent (%v): ../shared/corpus holds the real hive this test needs", err)
	}
	zr, err := xz.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var hiveBytes bytes.Buffer
	if _, err := hiveBytes.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img := fatWithHive(t, dir, "SYSTEM", hiveBytes.Bytes())
	mtools := func(args ...string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	vol, err := fat.Open(fileDev{f}, fat.Options{})
	must(t, err)
	reg, err := winreg.Open(vol, vol, "", false)
	must(t, err)
	mnt := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	srv, err := gofs.Mount(mnt, New(reg, Owner{}), &gofs.Options{})
	must(t, err)
	unmounted := false
	defer func() {
		if !unmounted {
			srv.Unmount()
		}
	}()
	sys := filepath.Join(mnt, "HKLM", "SYSTEM")
	var files []string
	must(t, filepath.WalkDir(filepath.Join(sys, "ControlSet001", "services"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	}))

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(i)))
			order := rng.Perm(len(files))
			for _, j := range order[:min(len(order), 1500)] {
				if _, err := os.ReadFile(files[j]); err != nil {
					t.Errorf("scanner %d: %v", i, err)
					return
				}
			}
			// A walk of the keys the writers change.
			filepath.WalkDir(filepath.Join(sys, "Select"), func(string, fs.DirEntry, error) error { return nil })
		})
	}
	for w := range 2 {
		wg.Go(func() {
			base := filepath.Join(sys, fmt.Sprintf("offvm-w%d", w))
			if err := os.Mkdir(base, 0o755); err != nil {
				t.Error(err)
				return
			}
			for i := range 60 {
				k := filepath.Join(base, fmt.Sprintf("k%d", i%5))
				if err := os.MkdirAll(k, 0o755); err != nil {
					t.Error(err)
					return
				}
				if err := os.WriteFile(filepath.Join(k, "v"), []byte(fmt.Sprintf("value %d\n", i)), 0o644); err != nil {
					t.Error(err)
				}
				if err := os.WriteFile(filepath.Join(sys, "Select", fmt.Sprintf("W%d", w)), []byte(fmt.Sprintf("%d\n", i)), 0o644); err != nil {
					t.Error(err)
				}
				if i%7 == 0 && i < 55 {
					if err := os.RemoveAll(k); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	srv.Unmount()
	unmounted = true
	time.Sleep(10 * time.Millisecond)
	must(t, reg.Flush())
	must(t, vol.Sync())
	out := filepath.Join(dir, "written")
	mtools("mcopy", "-n", "-i", img, "::Windows/System32/config/SYSTEM", out)
	for w := range 2 {
		got, err := exec.Command("hivexget", out, fmt.Sprintf(`\offvm-w%d\k4`, w), "v").Output()
		if err != nil || strings.TrimSpace(string(got)) != "value 59" {
			t.Errorf("hivexget offvm-w%d\\k4 v: %q, %v; want value 59", w, got, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
