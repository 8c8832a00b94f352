package ext

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cRaw is the kernel's crc32c_le: no inversion on the way in or
// out, which Go's Update does, hence the two complements.
func crc32cRaw(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

func le32(v uint32) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return b[:]
}

// crc16 is the ANSI CRC-16 (polynomial 0x8005, reflected) that gdt_csum
// uses for group descriptors when metadata_csum is off.
func crc16(crc uint16, p []byte) uint16 {
	for _, b := range p {
		crc ^= uint16(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// inodeSeed is the per-inode checksum seed of metadata_csum: the file
// system seed, then the inode number and generation.
func (w *writer) inodeSeed(ino, gen uint32) uint32 {
	return crc32cRaw(crc32cRaw(w.seed, le32(ino)), le32(gen))
}

// superCsum sets s_checksum over the first 1020 bytes.
func (w *writer) superCsum() {
	if w.csum {
		binary.LittleEndian.PutUint32(w.sb[0x3FC:], crc32cRaw(^uint32(0), w.sb[:0x3FC]))
	}
}

// descCsum sets bg_checksum of group g.
func (w *writer) descCsum(g uint32) {
	d := w.gd[g]
	le := binary.LittleEndian
	switch {
	case w.csum:
		c := crc32cRaw(w.seed, le32(g))
		c = crc32cRaw(c, d[:0x1E])
		c = crc32cRaw(c, []byte{0, 0})
		c = crc32cRaw(c, d[0x20:])
		le.PutUint16(d[0x1E:], uint16(c))
	case w.gdtCsum:
		c := crc16(0xFFFF, w.sb[104:120])
		c = crc16(c, le32(g))
		c = crc16(c, d[:0x1E])
		if len(d) > 0x20 {
			c = crc16(c, d[0x20:])
		}
		le.PutUint16(d[0x1E:], c)
	}
}

// inodeCsum sets i_checksum_lo/hi of a raw inode.
func (w *writer) inodeCsum(ino uint32, raw []byte) {
	if !w.csum {
		return
	}
	le := binary.LittleEndian
	hasHi := len(raw) > 128 && 128+int(le.Uint16(raw[128:])) >= 0x84
	le.PutUint16(raw[0x7C:], 0)
	if hasHi {
		le.PutUint16(raw[0x82:], 0)
	}
	c := crc32cRaw(w.inodeSeed(ino, le.Uint32(raw[0x64:])), raw)
	le.PutUint16(raw[0x7C:], uint16(c))
	if hasHi {
		le.PutUint16(raw[0x82:], uint16(c>>16))
	}
}

// blockTailCsum sets the checksum that ends an extent block (at
// 12+12*max) or a directory leaf block (its last 4 bytes).
func (w *writer) blockTailCsum(ino, gen uint32, b []byte, at int) {
	if w.csum {
		binary.LittleEndian.PutUint32(b[at:], crc32cRaw(w.inodeSeed(ino, gen), b[:at]))
	}
}
