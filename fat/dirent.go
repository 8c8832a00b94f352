package fat

import (
	"encoding/binary"
	"strings"
	"time"
)

// Attribute bits of a directory entry.
const (
	attrReadOnly = 0x01
	attrHidden   = 0x02
	attrSystem   = 0x04
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLFN      = 0x0f // all of RO|HIDDEN|SYSTEM|VOLUME_ID marks a long-name entry
	// attrSettable is what system.ntfs_attrib may change.
	attrSettable = attrReadOnly | attrHidden | attrSystem | attrArchive
)

// NT reserved byte flags (Windows NT and later): the 8.3 base or extension
// is shown in lower case.
const (
	ntLowerBase = 0x08
	ntLowerExt  = 0x10
)

const (
	direntSize   = 32
	slotFree     = 0xe5
	slotEnd      = 0x00
	maxDirBytes  = 65536 * direntSize // fatgen103: at most 65,536 entries in a directory
	maxFileBytes = 1<<32 - 1
)

// dirent is a short (8.3) directory entry.
type dirent struct {
	name     [11]byte
	attr     byte
	ntres    byte
	crtTenth byte
	crtTime  uint16
	crtDate  uint16
	accDate  uint16
	cluster  uint32
	wrtTime  uint16
	wrtDate  uint16
	size     uint32
}

func decodeDirent(b []byte) dirent {
	le := binary.LittleEndian
	var d dirent
	copy(d.name[:], b[0:11])
	d.attr = b[11]
	d.ntres = b[12]
	d.crtTenth = b[13]
	d.crtTime = le.Uint16(b[14:])
	d.crtDate = le.Uint16(b[16:])
	d.accDate = le.Uint16(b[18:])
	d.cluster = uint32(le.Uint16(b[20:]))<<16 | uint32(le.Uint16(b[26:]))
	d.wrtTime = le.Uint16(b[22:])
	d.wrtDate = le.Uint16(b[24:])
	d.size = le.Uint32(b[28:])
	return d
}

func (d *dirent) encode(b []byte) {
	le := binary.LittleEndian
	copy(b[0:11], d.name[:])
	b[11] = d.attr
	b[12] = d.ntres
	b[13] = d.crtTenth
	le.PutUint16(b[14:], d.crtTime)
	le.PutUint16(b[16:], d.crtDate)
	le.PutUint16(b[18:], d.accDate)
	le.PutUint16(b[20:], uint16(d.cluster>>16))
	le.PutUint16(b[22:], d.wrtTime)
	le.PutUint16(b[24:], d.wrtDate)
	le.PutUint16(b[26:], uint16(d.cluster))
	le.PutUint32(b[28:], d.size)
}

// shortDisplay is the 8.3 name as shown when there is no long name, with
// the NT lower-case flags applied. Bytes above 0x7f are OEM code page
// characters; they are shown as Latin-1, which keeps them distinct.
func shortDisplay(n [11]byte, ntres byte) string {
	if n[0] == 0x05 {
		n[0] = 0xe5 // 0x05 stands for a leading 0xE5
	}
	conv := func(b []byte, lower bool) string {
		var sb strings.Builder
		for _, c := range b {
			r := rune(c)
			if lower && c >= 'A' && c <= 'Z' {
				r += 'a' - 'A'
			}
			sb.WriteRune(r)
		}
		return strings.TrimRight(sb.String(), " ")
	}
	base := conv(n[0:8], ntres&ntLowerBase != 0)
	ext := conv(n[8:11], ntres&ntLowerExt != 0)
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// FAT stores local time without a zone. offvm cannot know the guest's
// zone, so it writes UTC wall-clock time and reads stored times as UTC
// (as Linux does with its default tz=UTC mount option).
func encodeTime(t time.Time) (date, tm uint16, tenth byte) {
	t = t.UTC()
	switch {
	case t.Year() < 1980:
		return 1<<5 | 1, 0, 0 // 1980-01-01 00:00:00, the earliest FAT time
	case t.Year() > 2107:
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	tenth = byte(t.Second()%2*100 + t.Nanosecond()/10_000_000)
	return date, tm, tenth
}

func decodeTime(date, tm uint16, tenth byte) time.Time {
	if date == 0 {
		return time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if tenth > 199 {
		tenth = 0
	}
	sec := int(tm&0x1f)*2 + int(tenth)/100
	return time.Date(1980+int(date>>9), time.Month(date>>5&0x0f), int(date&0x1f),
		int(tm>>11), int(tm>>5&0x3f), sec, int(tenth)%100*10_000_000, time.UTC)
}
