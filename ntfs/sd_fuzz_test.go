package ntfs

import (
	"bytes"
	"testing"
)

// FuzzSecurityDescriptor feeds descriptors (as a parent's) to the parser
// and the inheritance rules: no input may panic, and what we compute must
// parse again with the parent's owner and group.
func FuzzSecurityDescriptor(f *testing.F) {
	f.Add(buildSD(0x8404, sidAdmins, sidSystem, []testACE{
		{0, 0x03, 0x001f01ff, sidEveryone}, {0, 0x0b, 0x10000000, sidCreator}, {1, 0x01, 0x00010000, sidAnon},
	}))
	f.Add(buildSD(0x8004, sidSystem, sidSystem, nil))
	f.Add([]byte{1, 0, 4, 0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 2, 0, 8, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseSD(b)
		if err != nil {
			return
		}
		for _, dir := range []bool{false, true} {
			c, err := inheritSD(b, dir)
			if err != nil {
				t.Fatalf("inheritSD of a descriptor parseSD accepts: %v", err)
			}
			if c == nil {
				continue
			}
			q, err := parseSD(c)
			if err != nil {
				t.Fatalf("our inherited descriptor does not parse: %v", err)
			}
			if !bytes.Equal(q.owner, p.owner) || !bytes.Equal(q.group, p.group) {
				t.Fatalf("owner/group changed: %x %x, want %x %x", q.owner, q.group, p.owner, p.group)
			}
			for _, a := range q.dacl {
				if a[1]&aceInherited == 0 {
					t.Fatalf("ACE %x lacks INHERITED_ACE", a)
				}
			}
		}
	})
}

// FuzzSDS parses $SDS contents: entries found must lie where they say.
func FuzzSDS(f *testing.F) {
	sd := buildSD(0x8004, sidSystem, sidSystem, []testACE{{0, 0x03, 0x001f01ff, sidEveryone}})
	entry := make([]byte, sdHeaderSize)
	putEntry := func(id uint32, off int) []byte {
		e := append([]byte(nil), entry...)
		e[0], e[4], e[5] = 7, byte(id), byte(id>>8)
		e[8], e[9] = byte(off), byte(off>>8)
		e[16] = byte(sdHeaderSize + len(sd))
		return append(e, sd...)
	}
	one := putEntry(0x100, 0)
	two := append(append(one, make([]byte, (16-len(one)%16)%16)...), putEntry(0x101, (len(one)+15)&^15)...)
	f.Add(one)
	f.Add(two)
	f.Fuzz(func(t *testing.T, b []byte) {
		st := parseSDS(b)
		for id, e := range st.byID {
			if e.id != id || e.off < 0 || e.off+int64(sdHeaderSize+len(e.sd)) > int64(len(b)) {
				t.Fatalf("entry %d at %d (%d bytes) outside the stream of %d", id, e.off, len(e.sd), len(b))
			}
			if st.end < e.off {
				t.Fatalf("end %d before entry at %d", st.end, e.off)
			}
		}
	})
}
