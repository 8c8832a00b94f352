package ntfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// fragmentedImage makes, with ntfs-3g, a 40 MiB volume (4 KiB clusters)
// whose /frag.bin has hundreds of small fragments, so that its
// runlist spans the base record and extension records through an
// $ATTRIBUTE_LIST: 1500 one-cluster files fill it, fillers take the
// rest, half the small files are deleted and frag.bin takes the holes.
// The other small files are then deleted too, leaving small holes
// between frag.bin's fragments; filler0..filler3 (4 MiB each) can
// be deleted to give contiguous room.
func fragmentedImage(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	img := mkntfsImage(t, dir, 40, 4096)
	mnt, unmount := mount3g(t, img)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(mnt, "s"), 0o755))
	one := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 1500; i++ {
		must(os.WriteFile(filepath.Join(mnt, "s", fmt.Sprintf("%05d", i)), one, 0o644))
	}
	for i := 0; i < 4; i++ {
		must(os.WriteFile(filepath.Join(mnt, fmt.Sprintf("filler%d", i)), make([]byte, 4<<20), 0o644))
	}
	f, err := os.Create(filepath.Join(mnt, "filler-rest"))
	must(err)
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	f.Close()
	// ntfs-3g places consecutive small files in alternating zones: free
	// every other file of each zone.
	for i := 0; i < 1500; i++ {
		if (i>>1)&1 == 0 {
			must(os.Remove(filepath.Join(mnt, "s", fmt.Sprintf("%05d", i))))
		}
	}
	content := make([]byte, 700*4096+123) // about 350 fragments
	rand.New(rand.NewSource(1)).Read(content)
	must(os.WriteFile(filepath.Join(mnt, "frag.bin"), content, 0o644))
	for i := 0; i < 1500; i++ {
		if (i>>1)&1 == 1 {
			must(os.Remove(filepath.Join(mnt, "s", fmt.Sprintf("%05d", i))))
		}
	}
	// linked.bin: two more names of 60 characters crowd its base record.
	lb := filepath.Join(mnt, "linked.bin")
	must(os.WriteFile(lb, randBytes(5000, 13), 0o644))
	for _, c := range "ab" {
		must(os.Link(lb, filepath.Join(mnt, strings.Repeat(string(c), 60))))
	}
	unmount()
	st := ntfsinfoLayout(t, img, "/frag.bin")
	if !st.list || len(st.dataRecs) < 3 || st.runs < 300 {
		t.Fatalf("ntfs-3g did not split /frag.bin over records: %+v", st)
	}
	checkConsistent(t, img)
	return img, content
}

// layoutInfo is what `ntfsinfo -F` says of a file's records.
type layoutInfo struct {
	base     uint64
	list     bool
	dataRecs []uint64 // records holding unnamed $DATA extents
	runs     int      // "Total runs"

	listNonResident bool
	nextInstance    int // of the base record
}

var (
	reInode = regexp.MustCompile(`Dumping Inode (\d+)`)
	reData  = regexp.MustCompile(`Dumping attribute \$DATA \(0x80\) from mft record (\d+)`)
	reRuns  = regexp.MustCompile(`Total runs: (\d+)`)
)

func ntfsinfoLayout(t *testing.T, img, path string) layoutInfo {
	t.Helper()
	out, err := exec.Command("ntfsinfo", "-v", "-F", path, img).Output()
	if err != nil {
		t.Fatalf("ntfsinfo -F %s: %v\n%s", path, err, out)
	}
	s := string(out)
	var li layoutInfo
	if m := reInode.FindStringSubmatch(s); m != nil {
		li.base, _ = strconv.ParseUint(m[1], 10, 64)
	}
	li.list = bytes.Contains(out, []byte("Dumping attribute $ATTRIBUTE_LIST"))
	if i := strings.Index(s, "Dumping attribute $ATTRIBUTE_LIST"); i >= 0 {
		li.listNonResident = regexp.MustCompile(`^[^D]*Resident:\s+No`).MatchString(s[i+34:])
	}
	for _, m := range reData.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		li.dataRecs = append(li.dataRecs, n)
	}
	if m := regexp.MustCompile(`Next Attribute Instance:\s+(\d+)`).FindStringSubmatch(s); m != nil {
		li.nextInstance, _ = strconv.Atoi(m[1])
	}
	if m := reRuns.FindStringSubmatch(s); m != nil {
		li.runs, _ = strconv.Atoi(m[1])
	}
	if li.list {
		if msg := listMatchesAttrs(s); msg != "" {
			t.Errorf("ntfsinfo -F %s: the attribute list does not match the attributes: %s", path, msg)
		}
	}
	return li
}

var (
	reAttrHead = regexp.MustCompile(`^Dumping attribute \S+ \(0x([0-9a-f]+)\) from mft record (\d+)`)
	reField    = regexp.MustCompile(`^\s*(Attribute type|MFT reference|Instance|Starting VCN|Attribute instance|Lowest VCN):?\s+(0x[0-9a-f]+|\d+)`)
)

// listMatchesAttrs checks, from ntfsinfo's dump, that the attribute
// list has one entry per attribute (type, record, instance, first VCN),
// no more and no less.
func listMatchesAttrs(dump string) string {
	num := func(s string) uint64 { n, _ := strconv.ParseUint(s, 0, 64); return n }
	listed, present := map[string]int{}, map[string]int{}
	var cur []uint64 // type, record, instance, vcn of the attribute being read
	inList := false
	flush := func() {
		if len(cur) == 4 && cur[0] != atAttrList {
			present[fmt.Sprint(cur)]++
		}
		cur = nil
	}
	var ent []uint64
	for _, line := range strings.Split(dump, "\n") {
		switch {
		case strings.Contains(line, "Dumping attribute list:"):
			inList = true
			continue
		case strings.Contains(line, "End of attribute list reached"):
			inList = false
			continue
		}
		if m := reAttrHead.FindStringSubmatch(line); m != nil {
			flush()
			cur = []uint64{num("0x" + m[1]), num(m[2]), 0, 0}
			continue
		}
		m := reField.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := num(m[2])
		switch {
		case inList && m[1] == "Attribute type":
			ent = []uint64{v, 0, 0, 0}
		case inList && m[1] == "Starting VCN" && len(ent) == 4:
			ent[3] = v
		case inList && m[1] == "MFT reference" && len(ent) == 4:
			ent[1] = v
		case inList && m[1] == "Instance" && len(ent) == 4:
			ent[2] = v
			listed[fmt.Sprint(ent)]++
		case !inList && m[1] == "Attribute instance" && len(cur) == 4:
			cur[2] = v
		case !inList && m[1] == "Lowest VCN" && len(cur) == 4:
			cur[3] = v
		}
	}
	flush()
	if len(listed) == 0 || len(present) == 0 {
		return "no list entries or attributes found in the dump"
	}
	for k, n := range present {
		if listed[k] != n {
			return fmt.Sprintf("attribute [type record instance vcn] %s present %d times, listed %d times", k, n, listed[k])
		}
	}
	for k, n := range listed {
		if present[k] != n {
			return fmt.Sprintf("list entry [type record instance vcn] %s listed %d times, present %d times", k, n, present[k])
		}
	}
	return ""
}

// hostSum is the sha256 of a file as an ntfs-3g mount reads it.
func hostSum(t *testing.T, img, path string) (string, int64) {
	t.Helper()
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	b, err := os.ReadFile(filepath.Join(mnt, path))
	if err != nil {
		t.Fatalf("ntfs-3g reads %s: %v", path, err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), int64(len(b))
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// splitCase is one change through the engine and what must follow.
type splitCase struct {
	name string
	file string
	// run changes the file (ino) whose content was old and returns the new content.
	run func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte
	// want checks the layout ntfsinfo shows afterwards.
	want func(li layoutInfo) string
}

func engineTruncate(t *testing.T, v *Volume, ino volume.Ino, old []byte, n int) []byte {
	t.Helper()
	if err := v.Truncate(ino, int64(n)); err != nil {
		t.Fatalf("Truncate %d: %v", n, err)
	}
	out := make([]byte, n)
	copy(out, old)
	return out
}

func engineWrite(t *testing.T, v *Volume, ino volume.Ino, old, p []byte, off, chunk int) []byte {
	t.Helper()
	for i := 0; i < len(p); i += chunk {
		end := min(len(p), i+chunk)
		if _, err := v.WriteAt(ino, p[i:end], int64(off+i)); err != nil {
			t.Fatalf("WriteAt %d+%d: %v", off+i, end-i, err)
		}
	}
	out := append([]byte(nil), old...)
	if len(out) < off+len(p) {
		out = append(out, make([]byte, off+len(p)-len(out))...)
	}
	copy(out[off:], p)
	return out
}

func unlinkRoot(t *testing.T, v *Volume, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := v.Unlink(v.Root(), n); err != nil {
			t.Fatalf("Unlink %s: %v", n, err)
		}
	}
}

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func wantSplit(min int) func(li layoutInfo) string {
	return func(li layoutInfo) string {
		if !li.list || len(li.dataRecs) < min {
			return fmt.Sprintf("want an attribute list and $DATA in at least %d records", min)
		}
		return ""
	}
}

func wantDataInOne(li layoutInfo) string {
	if len(li.dataRecs) != 1 {
		return "want $DATA in one record"
	}
	return ""
}

var splitCases = []splitCase{
	{name: "shrink-small", file: "frag.bin", want: wantDataInOne,
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			return engineTruncate(t, v, ino, old, 10000)
		}},
	{name: "shrink-half", file: "frag.bin", want: wantDataInOne,
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			return engineTruncate(t, v, ino, old, 200*4096+5)
		}},
	{name: "shrink-in-extension", file: "frag.bin", want: wantSplit(2),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			return engineTruncate(t, v, ino, old, len(old)-100*4096-7)
		}},
	{name: "zero", file: "frag.bin", want: wantDataInOne,
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			return engineTruncate(t, v, ino, old, 0)
		}},
	{name: "zero-then-write", file: "frag.bin", want: wantDataInOne,
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			b := engineTruncate(t, v, ino, old, 0)
			return engineWrite(t, v, ino, b, randBytes(2<<20+17, 9), 0, 256<<10)
		}},
	{name: "grow-contiguous", file: "frag.bin", want: wantSplit(2),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			unlinkRoot(t, v, "filler0", "filler1")
			return engineTruncate(t, v, ino, old, len(old)+5<<20)
		}},
	{name: "append-into-holes", file: "frag.bin", want: wantSplit(3),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			// Only one-cluster holes are free: every appended cluster is a new run.
			return engineWrite(t, v, ino, old, randBytes(600*4096, 2), len(old), 1<<20)
		}},
	{name: "append-mib", file: "frag.bin", want: wantSplit(2),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			unlinkRoot(t, v, "filler0", "filler1", "filler2")
			return engineWrite(t, v, ino, old, randBytes(9<<20, 3), len(old), 1<<20)
		}},
	{name: "registry-commit-shorter", file: "frag.bin", want: wantSplit(2),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			n := len(old) - 300*4096 + 11
			b := engineTruncate(t, v, ino, old, n)
			return engineWrite(t, v, ino, b, randBytes(n, 4), 0, 1<<20)
		}},
	{name: "registry-commit-longer", file: "frag.bin", want: wantSplit(3),
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			n := len(old) + 500*4096 + 11
			b := engineTruncate(t, v, ino, old, n)
			return engineWrite(t, v, ino, b, randBytes(n, 5), 0, 4<<20)
		}},
	{name: "new-file-needs-list", file: "grown.bin", want: wantSplit(2),
		run: func(t *testing.T, v *Volume, _ volume.Ino, _ []byte) []byte {
			a, err := v.Create(v.Root(), "grown.bin", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			return engineWrite(t, v, a.Ino, nil, randBytes(650*4096+3, 6), 0, 64<<10)
		}},
	{name: "new-file-list-then-shrunk", file: "grown.bin", want: wantNoList,
		run: func(t *testing.T, v *Volume, _ volume.Ino, _ []byte) []byte {
			a, err := v.Create(v.Root(), "grown.bin", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			b := engineWrite(t, v, a.Ino, nil, randBytes(650*4096+3, 6), 0, 64<<10)
			// Every attribute is back in the base record: the list goes.
			return engineTruncate(t, v, a.Ino, b, 30*4096)
		}},
	{name: "new-file-list-then-appended", file: "grown.bin", want: wantSplit(3),
		run: func(t *testing.T, v *Volume, _ volume.Ino, _ []byte) []byte {
			a, err := v.Create(v.Root(), "grown.bin", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			b := engineWrite(t, v, a.Ino, nil, randBytes(400*4096, 6), 0, 64<<10)
			// The resident list made above is rewritten as the runlist grows.
			b = engineWrite(t, v, a.Ino, b, randBytes(300*4096, 11), len(b), 64<<10)
			return engineWrite(t, v, a.Ino, b, []byte("registry header"), 4096, 4096)
		}},
	{name: "append-300-small-writes", file: "frag.bin", want: wantSmallNextInstance,
		run: func(t *testing.T, v *Volume, ino volume.Ino, old []byte) []byte {
			// Every write adds clusters and lays the runlist out again; the
			// extents keep their attribute ids.
			return engineWrite(t, v, ino, old, randBytes(300*4096, 15), len(old), 4096)
		}},
	{name: "crowded-base-list-in-clusters", file: "linked.bin", want: wantNonResidentList,
		run: func(t *testing.T, v *Volume, _ volume.Ino, _ []byte) []byte {
			a, err := v.Lookup(v.Root(), "linked.bin")
			if err != nil {
				t.Fatal(err)
			}
			return engineWrite(t, v, a.Ino, randBytes(5000, 13), randBytes(600*4096, 14), 5000, 256<<10)
		}},
}

func wantNonResidentList(li layoutInfo) string {
	if !li.listNonResident || len(li.dataRecs) < 2 {
		return "want a non-resident attribute list and $DATA in several records"
	}
	return ""
}

func wantSmallNextInstance(li layoutInfo) string {
	if li.nextInstance > 32 || len(li.dataRecs) < 3 {
		return "want the base record's next attribute instance to stay small and $DATA in several records"
	}
	return ""
}

func wantNoList(li layoutInfo) string {
	if li.list || len(li.dataRecs) != 1 {
		return "want no attribute list and $DATA in the base record"
	}
	return ""
}

// TestSplitStreamWrites changes files whose $DATA spans several MFT
// records through an $ATTRIBUTE_LIST, and checks each result with
// ntfsresize, an ntfs-3g mount, ntfsinfo and a delete by ntfs-3g.
func TestSplitStreamWrites(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsinfo", "ntfs-3g")
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	src, content := fragmentedImage(t, t.TempDir())
	before := ntfsinfoLayout(t, src, "/frag.bin")
	t.Logf("ntfs-3g made /frag.bin: base record %d, $DATA in records %v, %d runs", before.base, before.dataRecs, before.runs)
	if lb := ntfsinfoLayout(t, src, "/linked.bin"); lb.list {
		t.Fatalf("ntfs-3g gave /linked.bin an attribute list already: %+v", lb)
	}
	for _, c := range splitCases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "v.img")
			copyFile(t, src, img)
			v := openVol(t, img, 0, Options{})
			var ino volume.Ino
			if c.file == "frag.bin" {
				a, err := v.Lookup(v.Root(), "frag.bin")
				if err != nil {
					t.Fatal(err)
				}
				ino = a.Ino
			}
			want := c.run(t, v, ino, content)
			if c.file == "frag.bin" {
				after := ntfsinfoLayout(t, img, "/frag.bin")
				for _, n := range before.dataRecs {
					if n != before.base && !slices.Contains(after.dataRecs, n) {
						checkRecordFree(t, img, n)
					}
				}
			}
			checkSplitResult(t, img, "/"+c.file, want, c.want)
		})
	}
}

// checkRecordFree wants MFT record n unused, as sleuthkit reads $MFT:
// its bit clear in $MFT's $BITMAP and its header without IN_USE.
func checkRecordFree(t *testing.T, img string, n uint64) {
	t.Helper()
	testutil.RequireTool(t, "icat", "sleuthkit")
	bm, err := exec.Command("icat", "-f", "ntfs", img, "0-176").Output()
	if err != nil || int(n/8) >= len(bm) {
		t.Fatalf("icat $MFT:$BITMAP: %v (%d bytes)", err, len(bm))
	}
	mft, err := exec.Command("icat", "-f", "ntfs", img, "0-128").Output()
	if err != nil || int(n+1)*1024 > len(mft) {
		t.Fatalf("icat $MFT: %v (%d bytes)", err, len(mft))
	}
	inUse := mft[int(n)*1024+0x16]&1 != 0
	if bm[n/8]&(1<<(n%8)) != 0 || inUse {
		t.Errorf("extension record %d left behind: bitmap bit %v, IN_USE %v", n, bm[n/8]&(1<<(n%8)) != 0, inUse)
	} else {
		t.Logf("extension record %d freed (sleuthkit: bitmap bit clear, not IN_USE)", n)
	}
}

// checkSplitResult runs the tools over a changed image.
func checkSplitResult(t *testing.T, img, path string, want []byte, layout func(layoutInfo) string) {
	t.Helper()
	checkConsistent(t, img)
	got, n := hostSum(t, img, path)
	if n != int64(len(want)) || got != sum(want) {
		t.Errorf("ntfs-3g reads %s as %d bytes sha256 %s, want %d bytes %s", path, n, got, len(want), sum(want))
	}
	li := ntfsinfoLayout(t, img, path)
	if msg := layout(li); msg != "" {
		t.Errorf("ntfsinfo -F %s: %s; got list=%v $DATA in records %v, %d runs", path, msg, li.list, li.dataRecs, li.runs)
	}
	t.Logf("ntfsinfo -F %s: list=%v $DATA in records %v, %d runs", path, li.list, li.dataRecs, li.runs)
	removeAllWith3g(t, img)
}

// TestSplitStreamCorpus writes through the attribute list of a file with
// 100 hard links (names and $DATA in extension records) of a real volume.
func TestSplitStreamCorpus(t *testing.T) {
	requireNTFSTools(t)
	gz := testutil.Corpus(t, "dfir_ntfs/ntfs3_attrlist.raw.gz")
	src := gunzipTemp(t, gz)
	mnt, unmount := mount3g(t, src, "ro")
	old, err := os.ReadFile(filepath.Join(mnt, "1.txt"))
	unmount()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		run  func(t *testing.T, v *Volume, ino volume.Ino) []byte
	}{
		{"grow-nonresident", func(t *testing.T, v *Volume, ino volume.Ino) []byte {
			return engineWrite(t, v, ino, old, randBytes(3<<20, 7), len(old), 1<<20)
		}},
		{"truncate-grow-shrink", func(t *testing.T, v *Volume, ino volume.Ino) []byte {
			b := engineTruncate(t, v, ino, old, 5<<20)
			b = engineWrite(t, v, ino, b, randBytes(4096, 8), 1<<20, 4096)
			return engineTruncate(t, v, ino, b, 2<<20+1)
		}},
		{"unlink-base-names", func(t *testing.T, v *Volume, ino volume.Ino) []byte {
			unlinkRoot(t, v, "9.txt", "10.txt")
			return old
		}},
		{"unlink-base-names-then-append", func(t *testing.T, v *Volume, ino volume.Ino) []byte {
			// 9.txt and 10.txt are $FILE_NAMEs of the base record: the list
			// must lose their entries.
			unlinkRoot(t, v, "9.txt", "10.txt")
			return engineWrite(t, v, ino, old, randBytes(1<<20, 12), len(old), 1<<20)
		}},
		{"registry-commit", func(t *testing.T, v *Volume, ino volume.Ino) []byte {
			b := engineTruncate(t, v, ino, old, 1<<20)
			return engineWrite(t, v, ino, b, randBytes(1<<20, 10), 0, 256<<10)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "v.img")
			copyFile(t, src, img)
			v := openVol(t, img, 0, Options{})
			a, err := v.Lookup(v.Root(), "1.txt")
			if err != nil {
				t.Fatal(err)
			}
			want := c.run(t, v, a.Ino)
			mnt, unmount := mount3g(t, img, "ro")
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(mnt, "1.txt"), &st); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(mnt, "9.txt")); (err == nil) == strings.HasPrefix(c.name, "unlink") {
				t.Errorf("ntfs-3g sees 9.txt: %v", err)
			}
			wantLinks := uint64(100)
			if strings.HasPrefix(c.name, "unlink") {
				wantLinks = 98
			}
			if uint64(st.Nlink) != wantLinks {
				t.Errorf("ntfs-3g sees %d links, want %d", st.Nlink, wantLinks)
			}
			unmount()
			checkSplitResult(t, img, "/1.txt", want, func(li layoutInfo) string {
				if !li.list {
					return "want the attribute list kept"
				}
				return ""
			})
		})
	}
}
