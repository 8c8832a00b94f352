package bitlocker

import (
	"crypto/aes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"unicode/utf16"
)

// Synthetic volumes: the same structures Windows writes (see the corpus
// samples), built here so that states the corpus lacks (clear key,
// conversion in progress, Vista) can be checked against dislocker, and so
// the fuzz targets have seeds of their own (the corpus is AGPL and stays
// out of the project).

// ccmSeal is ccmOpen's inverse: it returns the MAC and the ciphertext.
func ccmSeal(key, nonce, pt []byte) (mac, ct []byte) {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	x := make([]byte, 16)
	x[0] = 8*((16-2)/2) + 2
	copy(x[1:], nonce)
	n := len(pt)
	x[13], x[14], x[15] = byte(n>>16), byte(n>>8), byte(n)
	c.Encrypt(x, x)
	for i := 0; i < n; i += 16 {
		for j := i; j < n && j < i+16; j++ {
			x[j-i] ^= pt[j]
		}
		c.Encrypt(x, x)
	}
	ctr := func(i int) []byte {
		b := make([]byte, 16)
		b[0] = 2
		copy(b[1:], nonce)
		b[13], b[14], b[15] = byte(i>>16), byte(i>>8), byte(i)
		c.Encrypt(b, b)
		return b
	}
	s0 := ctr(0)
	mac = make([]byte, 16)
	for i := range mac {
		mac[i] = x[i] ^ s0[i]
	}
	ct = make([]byte, n)
	for i := 0; i < n; i += 16 {
		ks := ctr(i/16 + 1)
		for j := i; j < n && j < i+16; j++ {
			ct[j] = pt[j] ^ ks[j-i]
		}
	}
	return mac, ct
}

func datum(entry, value uint16, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	h := make([]byte, 8)
	binary.LittleEndian.PutUint16(h, uint16(8+len(b)))
	binary.LittleEndian.PutUint16(h[2:], entry)
	binary.LittleEndian.PutUint16(h[4:], value)
	binary.LittleEndian.PutUint16(h[6:], 1)
	return append(h, b...)
}

func u16(v uint16) []byte { b := make([]byte, 2); binary.LittleEndian.PutUint16(b, v); return b }
func u32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
func u64(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }

func keyDatum(entry, algo uint16, key []byte) []byte {
	return datum(entry, valueKey, u16(algo), u16(0), key)
}

// wrapped is an AES-CCM datum holding a key datum, as Windows wraps the
// VMK and the FVEK.
func wrapped(entry uint16, wrapKey []byte, nonceTag byte, inner []byte) []byte {
	nonce := []byte{0x00, 0x8c, 0xc7, 0xa1, 0x6f, 0xbc, 0xd7, 0x01, nonceTag, 0, 0, 0}
	mac, ct := ccmSeal(wrapKey, nonce, inner)
	return datum(entry, valueAESCCM, nonce, mac, ct)
}

// synth describes a synthetic volume.
type synth struct {
	ss       int  // sector size (512 when 0)
	eow      bool // the header's GUID says encrypt-on-write
	convert  uint32
	version  int
	method   uint16
	fvek     []byte
	state    uint16 // current and next state
	size     int64  // volume size
	encSize  int64  // encrypted part
	recovery string // "" for a clear key (protection suspended)
}

var synthGUID = []byte{0xda, 0x0f, 0x54, 0x19, 0x72, 0x30, 0x54, 0x45, 0x9d, 0xdc, 0x9d, 0xf7, 0x34, 0x3e, 0xf0, 0x68}

const (
	synthMeta1  = 1 << 20
	synthHeader = 4 << 20
)

func (s synth) sectorSize() int {
	if s.ss == 0 {
		return 512
	}
	return s.ss
}

func (s synth) offsets() [3]uint64 { return [3]uint64{synthMeta1, 2 << 20, 3 << 20} }

// metadata builds one metadata block of s.
func (s synth) metadata() []byte {
	vmk := make([]byte, 32)
	for i := range vmk {
		vmk[i] = byte(0xa0 + i)
	}
	vmkGUID := []byte{0xed, 0xed, 0xfa, 0x55, 0x3a, 0x60, 0x9f, 0x45, 0x8f, 0x6b, 0x32, 0x5c, 0xf7, 0x81, 0xf9, 0x71}
	var prot uint16
	var nested []byte
	if s.recovery == "" {
		clear := make([]byte, 32)
		for i := range clear {
			clear[i] = byte(i * 7)
		}
		nested = append(keyDatum(0, 0x2000, clear), wrapped(0, clear, 2, keyDatum(0, 0x2000, vmk))...)
	} else {
		prot = ProtRecovery
		salt := []byte("offvm-test-salt!")
		rk, err := RecoveryKey(s.recovery)
		if err != nil {
			panic(err)
		}
		key := stretch(recoveryHash(rk), salt)
		nested = append(datum(0, valueStretch, u16(0x1000), u16(0), salt), wrapped(0, key, 3, keyDatum(0, 0x2000, vmk))...)
	}
	vmkDatum := datum(entryVMK, valueVMK, vmkGUID, u64(0x01d7bc6fa22b08c0), u16(0), u16(prot), nested)
	desc := utf16.Encode([]rune("SYNTH-PC C: 12/1/2026"))
	db := make([]byte, 2*len(desc)+2)
	for i, c := range desc {
		binary.LittleEndian.PutUint16(db[2*i:], c)
	}
	entries := append(datum(entryDescription, valueUnicode, db), vmkDatum...)
	entries = append(entries, wrapped(entryFVEK, vmk, 6, keyDatum(0, s.method, s.fvek))...)
	entries = append(entries, datum(entryVolumeHdr, valueOffsetLen, u64(synthHeader), u64(uint64(16*s.sectorSize())))...)
	ds := append(u32(uint32(0x30+len(entries))), u32(1)...)
	ds = append(ds, u32(0x30)...)
	ds = append(ds, u32(uint32(0x30+len(entries)))...)
	ds = append(ds, synthGUID...)
	ds = append(ds, u32(8)...)
	ds = append(ds, u16(s.method)...)
	ds = append(ds, u16(s.method)...)
	ds = append(ds, u64(0x01d7bc6f9e6e6243)...)
	ds = append(ds, entries...)
	size := (0x40 + len(ds) + 15) &^ 15
	h := []byte(Signature)
	h = append(h, u16(uint16(size>>4))...)
	h = append(h, u16(uint16(s.version))...)
	h = append(h, u16(s.state)...)
	h = append(h, u16(s.state)...)
	h = append(h, u64(uint64(s.encSize))...)
	h = append(h, u32(s.convert)...)
	h = append(h, u32(16)...)
	for _, o := range s.offsets() {
		h = append(h, u64(o)...)
	}
	h = append(h, u64(synthHeader)...)
	blk := append(h, ds...)
	blk = append(blk, make([]byte, size-len(blk))...)
	// the validation record: remaining length, version, CRC-32
	blk = append(blk, u16(uint16(metadataRegion-size))...)
	blk = append(blk, u16(2)...)
	return append(blk, u32(crc32.ChecksumIEEE(blk[:size]))...)
}

// bootSector is the FVE boot sector Windows 7 and later write.
func (s synth) bootSector() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xeb, 0x58, 0x90})
	copy(b[3:], Signature)
	binary.LittleEndian.PutUint16(b[11:], uint16(s.sectorSize()))
	b[13] = 8
	b[0x15] = 0xf8
	copy(b[0xa0:], []byte{0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01})
	if s.eow {
		copy(b[0xa0:], []byte{0x3b, 0x4d, 0xa8, 0x92, 0x80, 0xdd, 0x0e, 0x4d, 0x9e, 0x4e, 0xb1, 0xe3, 0x28, 0x4e, 0xae, 0xd8})
	}
	for i, o := range s.offsets() {
		binary.LittleEndian.PutUint64(b[0xb0+8*i:], o)
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

// build returns the raw BitLocker volume holding plain (the decrypted
// volume Windows would show, with zeros in the reserved regions).
func (s synth) build(t testing.TB, plain []byte) []byte {
	t.Helper()
	ss := int64(s.sectorSize())
	c, err := newSectorCipher(s.method, s.fvek, int(ss))
	if err != nil {
		t.Fatal(err)
	}
	vol := make([]byte, s.size)
	copy(vol, plain)
	// the first 16 sectors move to the header area, encrypted there
	hl := 16 * ss
	copy(vol[synthHeader:synthHeader+hl], plain[:hl])
	for off := hl; off < s.size; off += ss {
		if off < s.encSize {
			c.encrypt(vol[off:off+ss], uint64(off))
		}
	}
	clear(vol[:hl])
	copy(vol, s.bootSector())
	meta := s.metadata()
	for _, o := range s.offsets() {
		copy(vol[o:o+metadataRegion], make([]byte, metadataRegion))
		copy(vol[o:], meta)
	}
	return vol
}

// expected is the decrypted volume Windows shows for plain: the reserved
// regions (metadata, relocated header, the slice under conversion) as zeros.
func (s synth) expected(plain []byte) []byte {
	out := append([]byte(nil), plain[:s.size]...)
	zero := func(a, n int64) { clear(out[a : a+n]) }
	for _, o := range s.offsets() {
		zero(int64(o), metadataRegion)
	}
	zero(synthHeader, 16*int64(s.sectorSize()))
	if s.state == StateSwitching {
		zero(s.encSize, int64(s.convert))
	}
	return out
}
