package ntfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// testACE is an ACE as the test writes and reads it.
type testACE struct {
	typ, flags byte
	mask       uint32
	sid        string // S-1-...
}

func (a testACE) String() string {
	return fmt.Sprintf("{type %d flags %#02x mask %#08x %s}", a.typ, a.flags, a.mask, a.sid)
}

func sidBytes(s string) []byte {
	parts := strings.Split(strings.TrimPrefix(s, "S-"), "-")
	rev, _ := strconv.Atoi(parts[0])
	auth, _ := strconv.ParseUint(parts[1], 10, 48)
	b := []byte{byte(rev), byte(len(parts) - 2), 0, 0, 0, 0, 0, 0}
	for i := 0; i < 6; i++ {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[2:] {
		n, _ := strconv.ParseUint(p, 10, 32)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	return b
}

func sidString(b []byte) string {
	var auth uint64
	for i := 0; i < 6; i++ {
		auth = auth<<8 | uint64(b[2+i])
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		s += fmt.Sprintf("-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return s
}

// buildSD makes a self-relative descriptor: owner, group, DACL.
func buildSD(control uint16, owner, group string, aces []testACE) []byte {
	le := binary.LittleEndian
	var acl []byte
	for _, a := range aces {
		sid := sidBytes(a.sid)
		e := []byte{a.typ, a.flags, 0, 0}
		le.PutUint16(e[2:], uint16(8+len(sid)))
		e = le.AppendUint32(e, a.mask)
		acl = append(acl, append(e, sid...)...)
	}
	hdr := []byte{2, 0, 0, 0, 0, 0, 0, 0}
	le.PutUint16(hdr[2:], uint16(8+len(acl)))
	le.PutUint16(hdr[4:], uint16(len(aces)))
	acl = append(hdr, acl...)
	b := make([]byte, 20)
	b[0] = 1
	le.PutUint16(b[2:], control)
	le.PutUint32(b[16:], 20)
	b = append(b, acl...)
	le.PutUint32(b[4:], uint32(len(b)))
	b = append(b, sidBytes(owner)...)
	le.PutUint32(b[8:], uint32(len(b)))
	return append(b, sidBytes(group)...)
}

// readSD parses what ntfs-3g returns as system.ntfs_acl.
func readSD(t *testing.T, b []byte) (control uint16, owner, group string, aces []testACE) {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 20 {
		t.Fatalf("descriptor of %d bytes", len(b))
	}
	control = le.Uint16(b[2:])
	owner, group = sidString(b[le.Uint32(b[4:]):]), sidString(b[le.Uint32(b[8:]):])
	d := le.Uint32(b[16:])
	n := int(le.Uint16(b[d+4:]))
	for p := int(d) + 8; n > 0; n-- {
		l := int(le.Uint16(b[p+2:]))
		aces = append(aces, testACE{b[p], b[p+1], le.Uint32(b[p+4:]), sidString(b[p+8 : p+l])})
		p += l
	}
	return
}

const (
	sidEveryone = "S-1-1-0"
	sidSystem   = "S-1-5-18"
	sidUsers    = "S-1-5-32-545"
	sidAdmins   = "S-1-5-32-544"
	sidGuests   = "S-1-5-32-546"
	sidCreator  = "S-1-3-0"
	sidAnon     = "S-1-5-7"
)

// TestInheritedACLs gives a directory (through ntfs-3g) a descriptor with
// inheritable and non-inheritable ACEs, creates files and folders in it
// through our engine, and reads their descriptors back through ntfs-3g.
// The expected ACEs are written here from the inheritance rules
// (MS-DTYP 2.5.3.4, Win32 "ACE Inheritance"), not computed.
func TestInheritedACLs(t *testing.T) {
	requireNTFSTools(t)
	img := mkntfsImage(t, t.TempDir(), 32, 4096)
	mnt, unmount := mount3g(t, img)
	parent := []testACE{
		{0, 0x03, 0x001f01ff, sidEveryone}, // OI|CI
		{0, 0x02, 0x001200a9, sidSystem},   // CI: folders only
		{0, 0x01, 0x001200a9, sidUsers},    // OI: files only
		{0, 0x07, 0x001f01ff, sidAdmins},   // OI|CI|NO_PROPAGATE: one generation
		{0, 0x00, 0x00120089, sidGuests},   // not inheritable
		{0, 0x0b, 0x10000000, sidCreator},  // OI|CI|INHERIT_ONLY, GENERIC_ALL
		{1, 0x0b, 0x00010000, sidAnon},     // deny DELETE, OI|CI|INHERIT_ONLY
	}
	if err := os.Mkdir(filepath.Join(mnt, "parent"), 0o755); err != nil {
		t.Fatal(err)
	}
	sd := buildSD(0x8404, sidAdmins, sidSystem, parent)
	if err := syscall.Setxattr(filepath.Join(mnt, "parent"), "system.ntfs_acl", sd, 0); err != nil {
		t.Fatalf("ntfs-3g sets the parent's descriptor: %v", err)
	}
	unmount()

	v := openVol(t, img, 0, Options{})
	p := lookupPath(t, v, "parent")
	for _, n := range []string{"f1", "f2"} {
		if _, err := v.Create(p, n, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d1, err := v.Mkdir(p, "d1", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Mkdir(p, "d2", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create(d1.Ino, "g", 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Mkdir(d1.Ino, "e", 0o755); err != nil {
		t.Fatal(err)
	}

	I := byte(0x10)
	file := []testACE{
		{0, I, 0x001f01ff, sidEveryone},
		{0, I, 0x001200a9, sidUsers},
		{0, I, 0x001f01ff, sidAdmins},
		{0, I, 0x001f01ff, sidAdmins}, // CREATOR OWNER becomes the owner, GENERIC_ALL the file rights
		{1, I, 0x00010000, sidAnon},
	}
	dir := []testACE{
		{0, I | 0x03, 0x001f01ff, sidEveryone},
		{0, I | 0x02, 0x001200a9, sidSystem},
		{0, I | 0x09, 0x001200a9, sidUsers},   // OI only: passed on, not effective here
		{0, I, 0x001f01ff, sidAdmins},         // no propagation beyond this folder
		{0, I, 0x001f01ff, sidAdmins},         // the owner's effective ACE ...
		{0, I | 0x0b, 0x10000000, sidCreator}, // ... and CREATOR OWNER kept for below
		{1, I | 0x03, 0x00010000, sidAnon},
	}
	grandFile := []testACE{
		{0, I, 0x001f01ff, sidEveryone},
		{0, I, 0x001200a9, sidUsers},
		{0, I, 0x001f01ff, sidAdmins},
		{1, I, 0x00010000, sidAnon},
	}
	grandDir := []testACE{
		{0, I | 0x03, 0x001f01ff, sidEveryone},
		{0, I | 0x02, 0x001200a9, sidSystem},
		{0, I | 0x09, 0x001200a9, sidUsers},
		{0, I, 0x001f01ff, sidAdmins},
		{0, I | 0x0b, 0x10000000, sidCreator},
		{1, I | 0x03, 0x00010000, sidAnon},
	}
	checkConsistent(t, img)
	mnt, unmount = mount3g(t, img, "ro")
	defer unmount()
	for _, c := range []struct {
		path string
		want []testACE
	}{
		{"parent/f1", file}, {"parent/f2", file}, {"parent/d1", dir}, {"parent/d2", dir},
		{"parent/d1/g", grandFile}, {"parent/d1/e", grandDir},
	} {
		b := make([]byte, 4096)
		n, err := syscall.Getxattr(filepath.Join(mnt, c.path), "system.ntfs_acl", b)
		if err != nil {
			t.Errorf("%s: system.ntfs_acl: %v", c.path, err)
			continue
		}
		ctl, owner, group, aces := readSD(t, b[:n])
		if owner != sidAdmins || group != sidSystem {
			t.Errorf("%s: owner %s group %s, want the parent's %s %s", c.path, owner, group, sidAdmins, sidSystem)
		}
		if ctl&0x0004 == 0 || ctl&0x0400 == 0 {
			t.Errorf("%s: control %#x lacks DACL_PRESENT or DACL_AUTO_INHERITED", c.path, ctl)
		}
		if fmt.Sprint(aces) != fmt.Sprint(c.want) {
			t.Errorf("%s:\n got  %v\n want %v", c.path, aces, c.want)
		}
	}
	unmount()
	// Files with the same inherited descriptor share one $Secure entry.
	ids := map[string]string{}
	re := regexp.MustCompile(`(?i)security id:\s*(\S+)`)
	for _, f := range []string{"/parent/f1", "/parent/f2", "/parent/d1", "/parent/d2"} {
		out := testutil.Run(t, "ntfsinfo", "-v", "-F", f, img)
		if m := re.FindStringSubmatch(out); m != nil {
			ids[f] = m[1]
		}
	}
	if len(ids) == 4 {
		if ids["/parent/f1"] != ids["/parent/f2"] || ids["/parent/d1"] != ids["/parent/d2"] || ids["/parent/f1"] == ids["/parent/d1"] {
			t.Errorf("security ids (ntfsinfo): %v; want files sharing one, folders another", ids)
		}
	} else {
		t.Logf("ntfsinfo shows no security ids: %v", ids)
	}
	t.Logf("security ids: %v", ids)
}
