package bitlocker

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Encryption methods (the FVEK's algorithm).
const (
	AES128Diffuser = 0x8000
	AES256Diffuser = 0x8001
	AES128CBC      = 0x8002
	AES256CBC      = 0x8003
	AES128XTS      = 0x8004
	AES256XTS      = 0x8005
)

// MethodName is an encryption method in words.
func MethodName(a uint16) string {
	switch a {
	case AES128Diffuser:
		return "AES-CBC 128 with Elephant diffuser"
	case AES256Diffuser:
		return "AES-CBC 256 with Elephant diffuser"
	case AES128CBC:
		return "AES-CBC 128"
	case AES256CBC:
		return "AES-CBC 256"
	case AES128XTS:
		return "AES-XTS 128"
	case AES256XTS:
		return "AES-XTS 256"
	}
	return fmt.Sprintf("method 0x%04x", a)
}

// sectorCipher encrypts and decrypts one sector in place; off is the
// sector's byte offset in the volume, which every method mixes in.
type sectorCipher interface {
	decrypt(b []byte, off uint64)
	encrypt(b []byte, off uint64)
}

// newSectorCipher builds the cipher for an FVEK of the given method.
func newSectorCipher(method uint16, fvek []byte, sectorSize int) (sectorCipher, error) {
	need := map[uint16]int{AES128Diffuser: 48, AES256Diffuser: 64, AES128CBC: 16, AES256CBC: 32, AES128XTS: 32, AES256XTS: 64}
	n, ok := need[method]
	if !ok {
		return nil, fmt.Errorf("encryption method 0x%04x is not supported", method)
	}
	if len(fvek) < n {
		return nil, fmt.Errorf("%s key of %d bytes, need %d", MethodName(method), len(fvek), n)
	}
	switch method {
	case AES128CBC, AES256CBC:
		c, err := aes.NewCipher(fvek[:n])
		return &cbcCipher{c: c}, err
	case AES128Diffuser, AES256Diffuser:
		kl := 16
		if method == AES256Diffuser {
			kl = 32
		}
		c, err := aes.NewCipher(fvek[:kl])
		if err != nil {
			return nil, err
		}
		t, err := aes.NewCipher(fvek[32 : 32+kl])
		return &diffuserCipher{cbc: cbcCipher{c: c}, tweak: t}, err
	default:
		c1, err := aes.NewCipher(fvek[:n/2])
		if err != nil {
			return nil, err
		}
		c2, err := aes.NewCipher(fvek[n/2 : n])
		return &xtsCipher{data: c1, tweak: c2, sectorSize: uint64(sectorSize)}, err
	}
}

// cbcCipher is AES-CBC with the IV the FVEK makes of the byte offset.
type cbcCipher struct{ c cipher.Block }

func (x *cbcCipher) iv(off uint64) []byte {
	iv := make([]byte, 16)
	binary.LittleEndian.PutUint64(iv, off)
	x.c.Encrypt(iv, iv)
	return iv
}

func (x *cbcCipher) decrypt(b []byte, off uint64) {
	cipher.NewCBCDecrypter(x.c, x.iv(off)).CryptBlocks(b, b)
}

func (x *cbcCipher) encrypt(b []byte, off uint64) {
	cipher.NewCBCEncrypter(x.c, x.iv(off)).CryptBlocks(b, b)
}

// xtsCipher is AES-XTS with the sector number as the tweak. Sectors are
// whole blocks, so ciphertext stealing never arises.
type xtsCipher struct {
	data, tweak cipher.Block
	sectorSize  uint64
}

func (x *xtsCipher) crypt(b []byte, off uint64, f func(dst, src []byte)) {
	// the tweak of each block, T_j = E(k2, sector) * alpha^j, laid out
	// once so the XORs run over the whole sector
	ts := make([]byte, len(b)&^15)
	var t [16]byte
	binary.LittleEndian.PutUint64(t[:], off/x.sectorSize)
	x.tweak.Encrypt(t[:], t[:])
	lo, hi := binary.LittleEndian.Uint64(t[:]), binary.LittleEndian.Uint64(t[8:])
	for i := 0; i < len(ts); i += 16 {
		binary.LittleEndian.PutUint64(ts[i:], lo)
		binary.LittleEndian.PutUint64(ts[i+8:], hi)
		// multiply by x in GF(2^128)
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ 0x87*carry
	}
	b = b[:len(ts)]
	subtle.XORBytes(b, b, ts)
	for i := 0; i < len(b); i += 16 {
		f(b[i:i+16], b[i:i+16])
	}
	subtle.XORBytes(b, b, ts)
}

func (x *xtsCipher) decrypt(b []byte, off uint64) { x.crypt(b, off, x.data.Decrypt) }
func (x *xtsCipher) encrypt(b []byte, off uint64) { x.crypt(b, off, x.data.Encrypt) }
