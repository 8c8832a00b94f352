package fs

import (
	"bytes"
	"errors"
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

	"github.com/offvm/offvm/internal/testutil"
)

// The race test drives one writable mount, in this process and through
// the kernel, so that `go test -race` watches fs, the NTFS, FAT and
// ext4 engines, winreg and hive serving parallel FUSE requests. Eight
// workers each walk every volume, read the seeded files (checking their
// bytes) and registry values, and write files and registry keys of their
// own; a ninth runs idle passes, which must never close an image holding
// changes. Nothing commits until the end; then the images are checked
// with ntfs-3g's tools, dosfstools and mtools, e2fsprogs and hivex.

const (
	raceWorkers = 8
	raceRounds  = 9 // file writes per worker and volume
	raceKeys    = 3 // files (and registry keys) each worker keeps
)

// raceContent is what worker w writes to its file k in round r: sizes
// vary so that files grow and shrink across clusters.
func raceContent(w, r int) []byte {
	n := 100 + (w*7919+r*104729)%70000
	line := fmt.Sprintf("worker %d round %d\n", w, r)
	return bytes.Repeat([]byte(line), n/len(line)+1)[:n]
}

// raceFinal is what worker w's file k holds after every round.
func raceFinal(w, k int) []byte {
	last := k
	for r := k; r < raceRounds; r += raceKeys {
		last = r
	}
	return raceContent(w, last)
}

// seedFiles are on every volume before the mount; readers check them.
func seedFiles() map[string][]byte {
	m := map[string][]byte{}
	for i := range 4 {
		m[fmt.Sprintf("seed/s%d.bin", i)] = bytes.Repeat([]byte(fmt.Sprintf("seed %d|", i)), 1000*(i+1))
	}
	return m
}

func writeSeed(t *testing.T, dir string) {
	t.Helper()
	for p, b := range seedFiles() {
		must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), b, 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// raceLibrary makes a library of three bare file-system images: NTFS
// holding a real SYSTEM hive, FAT32 and ext4, each with the seed files.
func raceLibrary(t *testing.T) (lib string) {
	for _, tool := range [][2]string{{"mkntfs", "ntfs-3g"}, {"ntfs-3g", "ntfs-3g"}, {"ntfscat", "ntfs-3g"},
		{"ntfsresize", "ntfs-3g"}, {"mkfs.vfat", "dosfstools"}, {"fsck.fat", "dosfstools"}, {"mcopy", "mtools"},
		{"mkfs.ext4", "e2fsprogs"}, {"e2fsck", "e2fsprogs"}, {"debugfs", "e2fsprogs"},
		{"hivexget", "libhivex-bin"}, {"xz", "xz-utils"}} {
		testutil.RequireTool(t, tool[0], tool[1])
	}
	hiveXZ := testutil.Corpus(t, "regipy/SYSTEM.xz")
	lib = t.TempDir()
	seed := filepath.Join(t.TempDir(), "seed")
	writeSeed(t, seed)

	ntfs := filepath.Join(lib, "win.img")
	must(t, os.WriteFile(ntfs, nil, 0o644))
	must(t, os.Truncate(ntfs, 96<<20))
	testutil.Run(t, "mkntfs", "-q", "-F", "-Q", "-L", "WIN", ntfs)
	nmnt := t.TempDir()
	testutil.Run(t, "ntfs-3g", ntfs, nmnt)
	cfg := filepath.Join(nmnt, "Windows", "System32", "config")
	err := os.MkdirAll(cfg, 0o755)
	if err == nil {
		err = exec.Command("sh", "-c", "xz -dc '"+hiveXZ+"' > '"+filepath.Join(cfg, "SYSTEM")+"'").Run()
	}
	if err == nil {
		err = exec.Command("cp", "-r", filepath.Join(seed, "seed"), nmnt).Run()
	}
	testutil.Run(t, "umount", nmnt)
	must(t, err)

	fat := filepath.Join(lib, "fat.img")
	must(t, os.WriteFile(fat, nil, 0o644))
	must(t, os.Truncate(fat, 64<<20))
	testutil.Run(t, "mkfs.vfat", "-F", "32", "-n", "FAT", fat)
	mtools(t, "mcopy", "-s", "-i", fat, filepath.Join(seed, "seed"), "::/")

	ext := filepath.Join(lib, "ext.img")
	must(t, os.WriteFile(ext, nil, 0o644))
	must(t, os.Truncate(ext, 64<<20))
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", seed, ext)
	return lib
}

func mtools(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

// TestRaceOneMount is the parallel-load test of issue 10 (see above).
func TestRaceOneMount(t *testing.T) {
	testutil.RequireRoot(t)
	lib := raceLibrary(t)
	mnt := t.TempDir()
	tree := NewTree(Options{Library: lib})
	srv, err := Mount(mnt, tree, MountOptions{})
	must(t, err)
	unmounted := false
	defer func() {
		if !unmounted && srv.Unmount() != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
	}()
	must(t, srv.WaitMount())

	vols := []string{"win.img/p0", "fat.img/p0", "ext.img/p0"}
	sys := filepath.Join(mnt, "win.img", "registry", "HKLM", "SYSTEM")
	var regFiles []string
	must(t, filepath.WalkDir(filepath.Join(sys, "ControlSet001", "Services"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(regFiles) < 3000 {
			regFiles = append(regFiles, p)
		}
		return err
	}))
	if len(regFiles) < 100 {
		t.Fatalf("registry view shows %d values under Services, want hundreds", len(regFiles))
	}
	// Each worker's directories exist before the race: Mkdir of one name
	// from two goroutines is not what this test is about.
	for w := range raceWorkers {
		for _, v := range vols {
			must(t, os.Mkdir(filepath.Join(mnt, v, fmt.Sprintf("w%d", w)), 0o755))
		}
	}

	stop := make(chan struct{})
	idleDone := make(chan int)
	go func() { // idle passes racing the workers: never close a changed image
		passes := 0
		for {
			select {
			case <-stop:
				idleDone <- passes
				return
			default:
			}
			tree.CloseIdle(0, 0)
			passes++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for w := range raceWorkers {
		wg.Go(func() { raceWorker(t, mnt, sys, vols, regFiles, w) })
	}
	wg.Wait()
	close(stop)
	t.Logf("%d idle passes during the race", <-idleDone)
	if t.Failed() {
		return
	}

	// Unmount, then commit: nothing was committed before this point.
	must(t, srv.Unmount())
	unmounted = true
	for _, im := range tree.Images() {
		if !im.HoldsChanges() {
			t.Errorf("%s holds no changes after the race", im.Path)
		}
		if _, err := im.Commit(); err != nil {
			t.Fatalf("commit %s: %v", im.Path, err)
		}
		must(t, im.Close())
	}
	checkRaceNTFS(t, filepath.Join(lib, "win.img"))
	checkRaceFAT(t, filepath.Join(lib, "fat.img"))
	checkRaceExt(t, filepath.Join(lib, "ext.img"))
}

// raceWorker does worker w's rounds: each round walks one volume, checks
// the seed files on all, reads registry values, rewrites one of its files
// on every volume and one registry value.
func raceWorker(t *testing.T, mnt, sys string, vols, regFiles []string, w int) {
	rng := rand.New(rand.NewSource(int64(w)))
	seed := seedFiles()
	for r := range raceRounds {
		walkVolume(t, filepath.Join(mnt, vols[(w+r)%len(vols)]))
		for _, v := range vols {
			for p, want := range seed {
				if got, err := os.ReadFile(filepath.Join(mnt, v, p)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("worker %d: %s/%s: %d bytes, %v; want the %d seeded bytes", w, v, p, len(got), err, len(want))
					return
				}
			}
			p := filepath.Join(mnt, v, fmt.Sprintf("w%d", w), fmt.Sprintf("f%d", r%raceKeys))
			if err := os.WriteFile(p, raceContent(w, r), 0o644); err != nil {
				t.Errorf("worker %d: %v", w, err)
				return
			}
		}
		for range 30 {
			if _, err := os.ReadFile(regFiles[rng.Intn(len(regFiles))]); err != nil {
				t.Errorf("worker %d: %v", w, err)
				return
			}
		}
		key := filepath.Join(sys, fmt.Sprintf("offvm-w%d", w), fmt.Sprintf("k%d", r%raceKeys))
		if err := os.MkdirAll(key, 0o755); err != nil {
			t.Errorf("worker %d: %v", w, err)
			return
		}
		if err := os.WriteFile(filepath.Join(key, "v"), fmt.Appendf(nil, "w%d r%d\n", w, r), 0o644); err != nil {
			t.Errorf("worker %d: %v", w, err)
			return
		}
		if r == 1 { // a key made and dropped while others read
			gone := filepath.Join(sys, fmt.Sprintf("offvm-w%d", w), "gone")
			if err := os.MkdirAll(gone, 0o755); err != nil || os.RemoveAll(gone) != nil {
				t.Errorf("worker %d: key %s made and removed: %v", w, gone, err)
			}
		}
	}
}

// walkVolume reads every file below dir. Files other workers are
// rewriting may be seen mid-write; only errors count.
func walkVolume(t *testing.T, dir string) {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if _, err := os.ReadFile(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking %s: %v", dir, err)
	}
}

// wantFiles are the files every volume must hold after the commit.
func wantFiles() map[string][]byte {
	m := seedFiles()
	for w := range raceWorkers {
		for k := range raceKeys {
			m[fmt.Sprintf("w%d/f%d", w, k)] = raceFinal(w, k)
		}
	}
	return m
}

func checkRaceNTFS(t *testing.T, img string) {
	if out, err := exec.Command("ntfsresize", "--info", "--force", "--no-progress-bar", img).CombinedOutput(); err != nil {
		t.Errorf("ntfsresize --info %s: %v\n%s", img, err, out)
	}
	for p, want := range wantFiles() {
		got, err := exec.Command("ntfscat", img, p).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ntfscat %s: %d bytes, %v; want %d", p, len(got), err, len(want))
		}
	}
	hive := filepath.Join(t.TempDir(), "SYSTEM")
	b, err := exec.Command("ntfscat", img, "Windows/System32/config/SYSTEM").Output()
	must(t, err)
	must(t, os.WriteFile(hive, b, 0o644))
	for w := range raceWorkers {
		for k := range raceKeys {
			last := k
			for r := k; r < raceRounds; r += raceKeys {
				last = r
			}
			got, err := exec.Command("hivexget", hive, fmt.Sprintf(`\offvm-w%d\k%d`, w, k), "v").Output()
			if want := fmt.Sprintf("w%d r%d", w, last); err != nil || strings.TrimSpace(string(got)) != want {
				t.Errorf("hivexget offvm-w%d\\k%d v: %q, %v; want %q", w, k, got, err, want)
			}
		}
		if err := exec.Command("hivexget", hive, fmt.Sprintf(`\offvm-w%d\gone`, w)).Run(); err == nil {
			t.Errorf("hivexget: offvm-w%d\\gone is still in the hive", w)
		}
	}
	if got, err := exec.Command("hivexget", hive, `\Select`, "Current").Output(); err != nil || len(bytes.TrimSpace(got)) == 0 {
		t.Errorf("hivexget Select Current: %q, %v (the hive's own values must survive)", got, err)
	}
}

func checkRaceFAT(t *testing.T, img string) {
	if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
	for p, want := range wantFiles() {
		if got := mtools(t, "mtype", "-i", img, "::/"+p); !bytes.Equal(got, want) {
			t.Errorf("mtype %s: %d bytes, want %d", p, len(got), len(want))
		}
	}
}

func checkRaceExt(t *testing.T, img string) {
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
	for p, want := range wantFiles() {
		got, err := exec.Command("debugfs", "-R", "cat /"+p, img).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("debugfs cat %s: %d bytes, %v; want %d", p, len(got), err, len(want))
		}
	}
}
