// Package luks unlocks LUKS1 and LUKS2 volumes (cryptsetup's on-disk
// formats) with a passphrase or key file and serves the decrypted data
// as a volume.Device. Keyslots are opened with PBKDF2 or Argon2i/id, the
// anti-forensic split is merged and the volume key checked against the
// header's digest; data is AES-XTS (plain64) or AES-CBC (ESSIV, plain64).
// The header and keyslots are only ever read.
//
// Formats: "LUKS On-Disk Format Specification" 1.2.3 and "LUKS2 On-Disk
// Format Specification" 1.1.
package luks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

var magic = []byte("LUKS\xba\xbe")

// ErrCorrupt wraps every structural problem of a header.
var ErrCorrupt = errors.New("corrupt LUKS header")

// ErrNoKey means no secret given opened any keyslot.
var ErrNoKey = errors.New("no passphrase or key file unlocks this LUKS volume")

// Header is a parsed LUKS1 or LUKS2 header.
type Header struct {
	Version int
	UUID    string
	Label   string // LUKS2 only
	// Cipher is "aes-xts-plain64" and the like (cipher-mode).
	Cipher      string
	KeyBytes    int   // volume key length
	DataOffset  int64 // bytes from the start of the device
	DataSize    int64 // bytes; -1 for "to the end of the device"
	SectorSize  int   // encryption sector size (512 for LUKS1)
	Slots       []Keyslot
	digest      digest
	v2HeaderLen int64
}

// Keyslot is one active keyslot.
type Keyslot struct {
	ID       int
	KDF      KDF
	AreaOff  int64 // bytes
	AreaSize int64
	Stripes  int
	AFHash   string
	// KeyBytes is the volume key's size, which the split material holds
	// Stripes times; Cipher and AreaKeyBytes encrypt the area (LUKS2
	// may differ from the data).
	KeyBytes     int
	Cipher       string
	AreaKeyBytes int
}

// KDF is how a passphrase becomes the keyslot key.
type KDF struct {
	Type       string // "pbkdf2", "argon2i", "argon2id"
	Hash       string // pbkdf2
	Iterations int    // pbkdf2
	Time       int    // argon2
	MemoryKiB  int    // argon2
	CPUs       int    // argon2
	Salt       []byte
}

// digest checks a candidate volume key.
type digest struct {
	hash       string
	iterations int
	salt       []byte
	value      []byte
}

// Probe says whether dev starts with a LUKS header.
func Probe(dev io.ReaderAt) bool {
	b := make([]byte, 8)
	if n, _ := dev.ReadAt(b, 0); n < 8 || !bytes.Equal(b[:6], magic) {
		return false
	}
	v := binary.BigEndian.Uint16(b[6:])
	return v == 1 || v == 2
}

// ReadHeader parses the header at the start of dev (size bytes).
func ReadHeader(dev io.ReaderAt, size int64) (*Header, error) {
	b := make([]byte, 4096)
	if n, err := dev.ReadAt(b, 0); n < 592 {
		return nil, fmt.Errorf("luks: reading header: %w", err)
	}
	if !bytes.Equal(b[:6], magic) {
		return nil, fmt.Errorf("luks: no LUKS magic: %w", ErrCorrupt)
	}
	switch v := binary.BigEndian.Uint16(b[6:]); v {
	case 1:
		return parseV1(b, size)
	case 2:
		return readV2(dev, size)
	default:
		return nil, fmt.Errorf("luks: version %d: %w", v, ErrCorrupt)
	}
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

const v1SlotActive = 0x00AC71F3

func parseV1(b []byte, size int64) (*Header, error) {
	be := binary.BigEndian
	h := &Header{Version: 1, SectorSize: 512, DataSize: -1}
	h.Cipher = cstr(b[8:40]) + "-" + cstr(b[40:72])
	hash := cstr(b[72:104])
	h.DataOffset = int64(be.Uint32(b[104:])) * 512
	h.KeyBytes = int(be.Uint32(b[108:]))
	h.digest = digest{hash: hash, value: clone(b[112:132]), salt: clone(b[132:164]), iterations: int(be.Uint32(b[164:]))}
	h.UUID = cstr(b[168:208])
	if h.KeyBytes <= 0 || h.KeyBytes > 128 || h.DataOffset > size || h.digest.iterations <= 0 {
		return nil, fmt.Errorf("luks1: key bytes %d, payload at %d of %d: %w", h.KeyBytes, h.DataOffset, size, ErrCorrupt)
	}
	for i := 0; i < 8; i++ {
		s := b[208+48*i:]
		if be.Uint32(s) != v1SlotActive {
			continue
		}
		ks := Keyslot{ID: i, Stripes: int(be.Uint32(s[44:])), AFHash: hash, Cipher: h.Cipher, KeyBytes: h.KeyBytes, AreaKeyBytes: h.KeyBytes,
			KDF:     KDF{Type: "pbkdf2", Hash: hash, Iterations: int(be.Uint32(s[4:])), Salt: clone(s[8:40])},
			AreaOff: int64(be.Uint32(s[40:])) * 512}
		ks.AreaSize = int64(h.KeyBytes) * int64(ks.Stripes)
		if err := ks.check(size); err != nil {
			return nil, fmt.Errorf("luks1 keyslot %d: %w", i, err)
		}
		h.Slots = append(h.Slots, ks)
	}
	return h, nil
}

func (ks *Keyslot) check(size int64) error {
	if ks.Stripes <= 0 || ks.Stripes > 1<<16 || ks.KeyBytes <= 0 || ks.KeyBytes > 128 || ks.AreaKeyBytes <= 0 || ks.AreaKeyBytes > 128 ||
		int64(ks.KeyBytes)*int64(ks.Stripes) > ks.AreaSize || ks.AreaOff < 0 || ks.AreaOff+ks.AreaSize > size {
		return fmt.Errorf("stripes %d, key bytes %d, area %d+%d of %d: %w", ks.Stripes, ks.KeyBytes, ks.AreaOff, ks.AreaSize, size, ErrCorrupt)
	}
	switch ks.KDF.Type {
	case "pbkdf2":
		if ks.KDF.Iterations <= 0 {
			return fmt.Errorf("pbkdf2 with %d iterations: %w", ks.KDF.Iterations, ErrCorrupt)
		}
	case "argon2i", "argon2id":
		if ks.KDF.Time <= 0 || ks.KDF.MemoryKiB <= 0 || ks.KDF.MemoryKiB > 4<<20 || ks.KDF.CPUs <= 0 || ks.KDF.CPUs > 255 {
			return fmt.Errorf("%s time %d memory %d KiB cpus %d: %w", ks.KDF.Type, ks.KDF.Time, ks.KDF.MemoryKiB, ks.KDF.CPUs, ErrCorrupt)
		}
	default:
		return fmt.Errorf("kdf %q: %w", ks.KDF.Type, ErrCorrupt)
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
