package ntfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// fragmentedFreeImage makes, with ntfs-3g, a 24 MiB volume whose free
// space is one-cluster holes: one-cluster files fill it to the last
// cluster (the MFT zone too), then every other one is deleted. When
// byNtfs3g, ntfs-3g then creates empty files until its own $MFT growth
// over those holes has given record 0 an $ATTRIBUTE_LIST, as on a
// long-lived Windows volume.
func fragmentedFreeImage(t *testing.T, byNtfs3g bool) string {
	t.Helper()
	img := mkntfsImage(t, t.TempDir(), 24, 4096)
	mnt, unmount := mount3g(t, img)
	fragmentFreeSpace(t, mnt)
	unmount()
	for i := 0; byNtfs3g && !mftHasList(t, img); i += 200 {
		if i >= 4000 {
			t.Fatalf("ntfs-3g did not give $MFT an attribute list:\n%s", testutil.Run(t, "ntfsinfo", "-i", "0", img))
		}
		mnt, unmount := mount3g(t, img)
		made := filepath.Join(mnt, "made-by-ntfs-3g")
		os.Mkdir(made, 0o755)
		for j := i; j < i+200; j++ {
			if err := os.WriteFile(filepath.Join(made, fmt.Sprint(j)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		unmount()
	}
	checkConsistent(t, img)
	return img
}

// fragmentFreeSpace fills a mounted volume with one-cluster files to the
// last cluster (the MFT zone too) and deletes half of them, so that what
// grows next gets one- or two-cluster runs.
func fragmentFreeSpace(t *testing.T, mnt string) {
	t.Helper()
	fill := filepath.Join(mnt, "fill")
	if err := os.Mkdir(fill, 0o755); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 4096)
	n := 0
	for ; n < 20000; n++ {
		if err := os.WriteFile(filepath.Join(fill, fmt.Sprint(n)), one, 0o644); err != nil {
			os.Remove(filepath.Join(fill, fmt.Sprint(n)))
			break
		}
	}
	// ntfs-3g places consecutive small files in alternating zones: free
	// every other file of each zone.
	for i := 0; i < n; i++ {
		if (i>>1)&1 == 0 {
			if err := os.Remove(filepath.Join(fill, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var reMFTExtent = regexp.MustCompile(`Dumping attribute \$DATA \(0x80\) from mft record (\d+)`)

func mftHasList(t *testing.T, img string) bool {
	return strings.Contains(testutil.Run(t, "ntfsinfo", "-i", "0", img), "$ATTRIBUTE_LIST")
}

// mftExtentRecords lists the records ntfsinfo finds $MFT's $DATA in.
func mftExtentRecords(t *testing.T, img string) []string {
	var out []string
	for _, m := range reMFTExtent.FindAllStringSubmatch(testutil.Run(t, "ntfsinfo", "-i", "0", img), -1) {
		out = append(out, m[1])
	}
	return out
}

var reDumpAttr = regexp.MustCompile(`Dumping attribute (\S+) \(0x[0-9a-f]+\) from mft record (\d+)`)

// attrsIn lists "type@record" for each attribute ntfsinfo dumps.
func attrsIn(dump string) []string {
	var out []string
	for _, m := range reDumpAttr.FindAllStringSubmatch(dump, -1) {
		out = append(out, m[1]+"@"+m[2])
	}
	return out
}

// mftWillGrow says whether the next record allocation grows $MFT.
func mftWillGrow(t *testing.T, v *Volume) bool {
	r0, err := v.freshRecord(recMFT)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := v.mftBitmap(r0)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(firstFreeRecord); i < uint64(v.mftSize/int64(v.geo.recordSize)); i++ {
		if !bm.bit(i) {
			return false
		}
	}
	return true
}

// TestMFTGrowsAcrossRecords creates files through our engine on volumes
// whose free space is fragmented until $MFT's runlist spans record 0 and
// two or more extension records, failing every write of creates that
// grow $MFT first; then ntfsresize, ntfsinfo, ntfs-3g and sleuthkit
// read the result, and ntfs-3g grows the same $MFT further. make test
// fails every write of one grow in four and of every grow made while
// the record ending $MFT's runlist is nearly full (those that add an
// extension record or the attribute list); make test-long (OFFVM_LONG=1)
// of every grow: several minutes under -race.
func TestMFTGrowsAcrossRecords(t *testing.T) {
	requireNTFSTools(t)
	failEvery := 4
	if os.Getenv("OFFVM_LONG") != "" {
		failEvery = 1
	}
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "ntfsinfo", "ntfs-3g")
	for _, tc := range []struct {
		name     string
		byNtfs3g bool
	}{{"offvm adds the attribute list", false}, {"ntfs-3g made the attribute list", true}} {
		t.Run(tc.name, func(t *testing.T) {
			img := fragmentedFreeImage(t, tc.byNtfs3g)
			before := mftExtentRecords(t, img)
			t.Logf("record 0 before: %s", attrsIn(testutil.Run(t, "ntfsinfo", "-i", "0", img)))
			fd := &faultDev{Device: openDev(t, img, 0)}
			v, err := Open(fd, Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir, err := v.Mkdir(v.Root(), "grown", 0o755)
			if err != nil {
				t.Fatal(err)
			}
			injected, grows, n := 0, 0, 0
			for ; n < 6000; n++ {
				if n%64 == 0 && len(mftExtentRecordsOf(t, v)) >= max(3, len(before)+1) {
					break
				}
				name := fmt.Sprintf("file-%04d.txt", n)
				if !mftWillGrow(t, v) {
					if _, err := v.Create(dir.Ino, name, 0o644); err != nil {
						t.Fatalf("create %s: %v", name, err)
					}
					continue
				}
				grows++
				if (grows-1)%failEvery != 0 && !mftRecordNearlyFull(t, v) {
					if _, err := v.Create(dir.Ino, name, 0o644); err != nil {
						t.Fatalf("create %s: %v", name, err)
					}
					continue
				}
				injected += createFailingEachWrite(t, fd, v, dir.Ino, name)
			}
			after := mftExtentRecords(t, img)
			t.Logf("%d creates, %d grew $MFT to %d bytes; %d injected failures (every write of one grow in %d and of those near a record's end) undone; $MFT extents in records %v, before %v",
				n, grows, v.mftSize, injected, failEvery, after, before)
			if injected == 0 {
				t.Fatal("no failure was injected while $MFT grew")
			}
			if len(after) < max(3, len(before)+1) {
				t.Fatalf("$MFT's runlist did not spread over more records (before %v, after %v)", before, after)
			}
			if !mftHasList(t, img) {
				t.Fatal("ntfsinfo shows no $ATTRIBUTE_LIST in record 0")
			}
			t.Logf("record 0 after: %s", attrsIn(testutil.Run(t, "ntfsinfo", "-i", "0", img)))
			checkConsistent(t, img)
			checkExtensionBits(t, img, after)
			checkGrownTree(t, img, n)
			// ntfs-3g grows the $MFT we laid out, then deletes everything.
			mnt, unmount := mount3g(t, img)
			for i := 0; i < 300; i++ {
				if err := os.WriteFile(filepath.Join(mnt, "grown", fmt.Sprintf("by-ntfs-3g-%d", i)), []byte("x"), 0o644); err != nil {
					t.Fatalf("ntfs-3g create on our $MFT: %v", err)
				}
			}
			unmount()
			checkConsistent(t, img)
			removeAllWith3g(t, img)
		})
	}
}

// mftRecordNearlyFull says whether the record holding the end of $MFT's
// runlist has little room left: the next grow may then move $DATA into
// a new extension record or give record 0 its attribute list, the cases
// the failures must be injected into.
func mftRecordNearlyFull(t *testing.T, v *Volume) bool {
	recs := mftExtentRecordsOf(t, v)
	r, err := v.newOp().rec(recs[len(recs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return len(r.buf)-int(r.used) < 128 // about what one grow over one-cluster holes adds
}

// mftExtentRecordsOf lists the records holding $MFT's $DATA, as our engine reads them.
func mftExtentRecordsOf(t *testing.T, v *Volume) []uint64 {
	o := v.newOp()
	r0, err := o.rec(recMFT)
	if err != nil {
		t.Fatal(err)
	}
	d, err := o.openAttr(r0, atData, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.sp == nil {
		return []uint64{recMFT}
	}
	return d.sp.exts
}

// checkGrownTree has ntfs-3g and sleuthkit read the n files in /grown.
func checkGrownTree(t *testing.T, img string, n int) {
	t.Helper()
	mnt, unmount := mount3g(t, img, "ro")
	ents, err := os.ReadDir(filepath.Join(mnt, "grown"))
	if err != nil || len(ents) != n {
		t.Errorf("ntfs-3g lists %d files in /grown (%v), want %d", len(ents), err, n)
	}
	tree := walkHost(t, mnt)
	unmount()
	checkIcat(t, img, tree)
	out := testutil.Run(t, "fls", "-r", "-p", img)
	if got := strings.Count(out, "grown/file-"); got != n {
		t.Errorf("fls -r lists %d files in /grown, want %d", got, n)
	}
}

// checkExtensionBits wants $MFT's bitmap, as ntfscat reads it, to mark
// every record holding one of $MFT's extents in use.
func checkExtensionBits(t *testing.T, img string, recs []string) {
	t.Helper()
	out, err := exec.Command("ntfscat", "-f", "-a", "BITMAP", img, "$MFT").Output()
	if err != nil {
		t.Fatalf("ntfscat $MFT bitmap: %v", err)
	}
	for _, r := range recs {
		n, _ := strconv.Atoi(r)
		if n/8 >= len(out) || out[n/8]&(1<<(n%8)) == 0 {
			t.Errorf("$MFT extension record %d is free in $MFT's bitmap", n)
		}
	}
}
