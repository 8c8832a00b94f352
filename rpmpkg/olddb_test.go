package rpmpkg

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// rpmQF is how both sides print a package, rpm's query format and ours.
const rpmQF = "%{NAME}=%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\n"

func names(pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Name+"="+p.EVR()+"."+p.Arch)
	}
	return out
}

// rpmBDBList is the host rpm's own listing of a Berkeley DB Packages file
// (its bdb_ro backend, a reader independent of ours).
func rpmBDBList(t *testing.T, packages string) []string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(packages)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "Packages"), b, 0o644)
	cmd := exec.Command("rpm", "--dbpath", dir, "--define", "_db_backend bdb_ro", "-qa", "--qf", rpmQF)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.Contains(stderr.String(), "error:") {
		t.Fatalf("rpm bdb_ro -qa %s: %v\n%s", packages, err, stderr.String())
	}
	list := strings.Fields(string(out))
	sort.Strings(list)
	return list
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install rpm db5.3-util)", tool)
		}
	}
}

// sqliteRecords reads the header blobs rpm wrote into rpmdb.sqlite.
func sqliteRecords(t *testing.T, path string) []Record {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT hnum, blob FROM Packages ORDER BY hnum")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.Index, &r.Blob); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// dbLoad writes recs as a Berkeley DB hash file with Debian's db5.3_load,
// as rpm stored them: key the header number in the file's byte order,
// and record 0 holding the next free header number.
func dbLoad(t *testing.T, path string, recs []Record, pageSize int, order binary.AppendByteOrder) {
	t.Helper()
	var in bytes.Buffer
	line := func(b []byte) {
		for _, c := range b {
			fmt.Fprintf(&in, "\\%02x", c)
		}
		in.WriteByte('\n')
	}
	var next uint32
	for _, r := range recs {
		next = max(next, r.Index+1)
	}
	line(order.AppendUint32(nil, 0))
	line(order.AppendUint32(nil, next))
	for _, r := range recs {
		line(order.AppendUint32(nil, r.Index))
		line(r.Blob)
	}
	lorder := "1234"
	if order == binary.BigEndian {
		lorder = "4321"
	}
	cmd := exec.Command("db5.3_load", "-T", "-t", "hash", "-c", fmt.Sprintf("db_pagesize=%d", pageSize), "-c", "db_lorder="+lorder, path)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("db5.3_load: %v\n%s", err, out)
	}
}

// Packages files written by Berkeley DB itself (db5.3_load) from the
// headers the host's rpm made, in both byte orders and at page sizes from
// 512 bytes (every header on a chain of overflow pages) to 64 KiB
// (headers inline on the bucket page), listed as rpm's bdb_ro lists them.
func TestReadBDBMadeByBerkeleyDB(t *testing.T) {
	requireTools(t, "rpm", "rpmbuild", "db5.3_load")
	dir := t.TempDir()
	sqlite := filepath.Join(dir, "sqlite")
	rpmRun(t, "--dbpath", sqlite, "--initdb")
	long := strings.Repeat("a description long enough to need several pages. ", 400)
	for i, p := range []struct{ name, epoch, version, release, desc string }{
		{"bash-offvm", "", "4.4.20", "4.el8", "short"}, {"glibc-offvm", "2", "2.28", "225.el8", long},
		{"zlib-offvm", "", "1.2.11", "25.el8", "x"}, {"kernel-offvm", "", "4.18.0", "553.el8", long[:3000]},
		{"openssl-offvm", "1", "1.1.1k", "12.el8", "y"}, {"tzdata-offvm", "", "2024a", "1.el8", long[:600]},
	} {
		sub := filepath.Join(dir, fmt.Sprint(i))
		os.Mkdir(sub, 0o755)
		rpm := buildRPMDesc(t, sub, p.name, p.epoch, p.version, p.release, p.desc)
		rpmRun(t, "--dbpath", sqlite, "--justdb", "--nodeps", "-i", rpm)
	}
	recs := sqliteRecords(t, filepath.Join(sqlite, "rpmdb.sqlite"))
	if len(recs) != 6 {
		t.Fatalf("rpm stored %d headers, want 6", len(recs))
	}
	for _, c := range []struct {
		page  int
		order binary.AppendByteOrder
	}{{512, binary.LittleEndian}, {4096, binary.LittleEndian}, {65536, binary.LittleEndian}, {512, binary.BigEndian}, {8192, binary.BigEndian}} {
		t.Run(fmt.Sprintf("%d-%v", c.page, c.order), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Packages")
			dbLoad(t, path, recs, c.page, c.order)
			want := rpmBDBList(t, path)
			got, err := ListBDB(path)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(names(got)) != fmt.Sprint(want) || len(want) != 6 {
				t.Errorf("listed %v\nrpm -qa %v", names(got), want)
			}
			// and every header byte for byte as rpm stored it
			b, _ := os.ReadFile(path)
			read, err := ReadBDB(b)
			if err != nil {
				t.Fatal(err)
			}
			sort.Slice(read, func(i, j int) bool { return read[i].Index < read[j].Index })
			for i := range recs {
				if i >= len(read) || read[i].Index != recs[i].Index || !bytes.Equal(read[i].Blob, recs[i].Blob) {
					t.Fatalf("record %d differs from the header rpm stored (%d records read)", recs[i].Index, len(read))
				}
			}
		})
	}
}

// A Packages file from a real RHEL 8 system (a UBI container's, kept in
// testdata: see testdata/README.md) read as the host's rpm reads it.
func TestReadBDBReal(t *testing.T) {
	requireTools(t, "rpm")
	path := filepath.Join("testdata", "libuuid.Packages")
	want := rpmBDBList(t, path)
	got, err := ListBDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(got)) != fmt.Sprint(want) || len(want) == 0 {
		t.Errorf("listed %v\nrpm -qa %v", names(got), want)
	}
}

func sle15(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "sle15-bci.Packages.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A Packages.db from a real SLE 15 system (SUSE's BCI container, kept in
// testdata). Debian's rpm has no ndb backend, so the check goes through
// rpm another way: the headers read from the ndb file are loaded into a
// Berkeley DB file, and the host's rpm reads that one, verifying each
// header's SHA1/SHA256 digest as it does for every header it takes from a
// database: a header cut or shifted by a byte would be skipped as BAD.
// Both lists must match name by name.
func TestReadNDBReal(t *testing.T) {
	requireTools(t, "rpm", "db5.3_load")
	data := sle15(t)
	recs, err := ReadNDB(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Packages(recs)
	if err != nil {
		t.Fatal(err)
	}
	bdbPath := filepath.Join(t.TempDir(), "Packages")
	dbLoad(t, bdbPath, recs, 4096, binary.LittleEndian)
	want := rpmBDBList(t, bdbPath)
	if fmt.Sprint(names(got)) != fmt.Sprint(want) || len(want) < 20 {
		t.Errorf("listed %d: %v\nrpm -qa %d: %v", len(got), names(got), len(want), want)
	}
	var bash bool
	for _, p := range got {
		bash = bash || (p.Name == "bash" && strings.Contains(p.Vendor, "SUSE"))
	}
	if !bash {
		t.Errorf("no SUSE bash among %d packages", len(got))
	}
}

// ndbFile builds a small ndb file from recs, for the damage cases and
// fuzz seeds (the real file above proves the reader against rpm).
func ndbFile(recs []Record) []byte {
	le := binary.LittleEndian
	b := make([]byte, ndbPageSize)
	copy(b, ndbMagic[:])
	le.PutUint32(b[8:], 1)
	le.PutUint32(b[12:], 1)
	le.PutUint32(b[16:], uint32(len(recs)+1))
	for off := ndbHeaderSize; off < ndbPageSize; off += ndbSlotSize {
		copy(b[off:], ndbSlotMagic[:])
	}
	for i, r := range recs {
		blk := len(b) / ndbBlockSize
		blob := append(append(le.AppendUint32(le.AppendUint32(append([]byte(nil), ndbHeadMagic[:]...), r.Index), 0), le.AppendUint32(nil, uint32(len(r.Blob)))...), r.Blob...)
		for (len(blob)+ndbBlobTail)%ndbBlockSize != 0 {
			blob = append(blob, 0)
		}
		blob = le.AppendUint32(blob, adler32.Checksum(blob))
		blob = append(le.AppendUint32(blob, uint32(len(r.Blob))), ndbTailMagic[:]...)
		s := ndbHeaderSize + i*ndbSlotSize
		le.PutUint32(b[s+4:], r.Index)
		le.PutUint32(b[s+8:], uint32(blk))
		le.PutUint32(b[s+12:], uint32(len(blob)/ndbBlockSize))
		b = append(b, blob...)
	}
	return b
}

func TestReadNDBDamaged(t *testing.T) {
	good := ndbFile([]Record{{1, blob([3]any{tagName, typeString, "bash"})}, {2, blob([3]any{tagName, typeString, "zlib"})}})
	if recs, err := ReadNDB(good); err != nil || len(recs) != 2 {
		t.Fatalf("good file: %d records, %v", len(recs), err)
	}
	flip := func(off int) []byte { b := bytes.Clone(good); b[off] ^= 0x40; return b }
	for name, b := range map[string][]byte{
		"torn blob":      flip(len(good) - 20),
		"slot magic":     flip(ndbHeaderSize + 3*ndbSlotSize),
		"file magic":     flip(0),
		"truncated":      good[:len(good)-16],
		"not blocks":     good[:len(good)-3],
		"slot past end":  func() []byte { b := bytes.Clone(good); b[ndbHeaderSize+8] = 0xff; b[ndbHeaderSize+9] = 0xff; return b }(),
		"only a header":  good[:ndbHeaderSize],
		"version":        flip(4),
		"blob idx wrong": flip(ndbPageSize + 4),
	} {
		if _, err := ReadNDB(b); !errors.Is(err, ErrNDB) {
			t.Errorf("%s: %v, want ErrNDB", name, err)
		}
	}
}

func TestReadBDBDamaged(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "libuuid.Packages"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBDB(good); err != nil {
		t.Fatal(err)
	}
	ps := int(binary.LittleEndian.Uint32(good[20:]))
	flip := func(off int, v byte) []byte { b := bytes.Clone(good); b[off] = v; return b }
	for name, b := range map[string][]byte{
		"magic":        flip(12, 0),
		"hash version": flip(16, 99),
		"page size":    flip(21, 0x11),
		"encrypted":    flip(24, 1),
		"truncated":    good[:len(good)-ps],
		"short":        good[:100],
	} {
		if _, err := ReadBDB(b); !errors.Is(err, ErrBDB) {
			t.Errorf("%s: %v, want ErrBDB", name, err)
		}
	}
	// every page after the metadata, mangled in its type byte: an error or
	// a list, never a panic (the fuzz target covers the rest)
	for p := 1; p < len(good)/ps; p++ {
		ReadBDB(flip(p*ps+25, 0x55))
	}
}

func FuzzReadBDB(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "libuuid.Packages")); err == nil {
		f.Add(b[:min(len(b), 16384)])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if recs, err := ReadBDB(b); err == nil {
			Packages(recs)
		}
	})
}

func FuzzReadNDB(f *testing.F) {
	f.Add(ndbFile([]Record{{1, blob([3]any{tagName, typeString, "bash"}, [3]any{tagVersion, typeString, "5"})}}))
	f.Add(ndbFile(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if recs, err := ReadNDB(b); err == nil {
			for _, r := range recs {
				if r.Index == 0 {
					t.Fatal("a record with package index 0")
				}
			}
			Packages(recs)
		}
	})
}
