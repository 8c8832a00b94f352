package bitlocker

import (
	"crypto/aes"
	"crypto/cipher"
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
	var t [16]byte
	binary.LittleEndian.PutUint64(t[:], off/x.sectorSize)
	x.tweak.Encrypt(t[:], t[:])
	for i := 0; i+16 <= len(b); i += 16 {
		blk := b[i : i+16]
		for j := range blk {
			blk[j] ^= t[j]
		}
		f(blk, blk)
		for j := range blk {
			blk[j] ^= t[j]
		}
		mulAlpha(&t)
	}
}

// mulAlpha multiplies the tweak by x in GF(2^128), little-endian.
func mulAlpha(t *[16]byte) {
	carry := t[15] >> 7
	for j := 15; j > 0; j-- {
		t[j] = t[j]<<1 | t[j-1]>>7
	}
	t[0] = t[0]<<1 ^ 0x87*carry
}

func (x *xtsCipher) decrypt(b []byte, off uint64) { x.crypt(b, off, x.data.Decrypt) }
func (x *xtsCipher) encrypt(b []byte, off uint64) { x.crypt(b, off, x.data.Encrypt) }
