package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/crypto/xts"
)

// sectorCipher encrypts one sector at a time, the sector number giving
// the IV as dm-crypt's IV generators do.
type sectorCipher interface {
	decrypt(dst, src []byte, sector uint64)
	encrypt(dst, src []byte, sector uint64)
}

// newCipher understands the specs cryptsetup writes for AES:
// aes-xts-plain64, aes-xts-plain, aes-cbc-essiv:sha256, aes-cbc-plain64
// and aes-cbc-plain.
func newCipher(spec string, key []byte) (sectorCipher, error) {
	name, mode, ok := strings.Cut(strings.ToLower(spec), "-")
	if !ok || name != "aes" {
		return nil, fmt.Errorf("cipher %q: only AES is supported: %w", spec, ErrUnsupported)
	}
	chain, ivgen, _ := strings.Cut(mode, "-")
	switch chain {
	case "xts":
		if ivgen != "plain64" && ivgen != "plain" {
			break
		}
		c, err := xts.NewCipher(aes.NewCipher, key)
		if err != nil {
			return nil, fmt.Errorf("cipher %s with a %d-byte key: %w", spec, len(key), err)
		}
		return xtsCipher{c, ivgen == "plain"}, nil
	case "cbc":
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("cipher %s with a %d-byte key: %w", spec, len(key), err)
		}
		switch ivgen {
		case "plain64", "plain":
			return cbcCipher{b: b, plain32: ivgen == "plain"}, nil
		case "essiv:sha256":
			salt := sha256.Sum256(key)
			e, _ := aes.NewCipher(salt[:])
			return cbcCipher{b: b, essiv: e}, nil
		}
	}
	return nil, fmt.Errorf("cipher %q: %w", spec, ErrUnsupported)
}

type xtsCipher struct {
	c       *xts.Cipher
	plain32 bool
}

func (x xtsCipher) iv(s uint64) uint64 {
	if x.plain32 {
		return s & 0xffffffff
	}
	return s
}
func (x xtsCipher) decrypt(dst, src []byte, s uint64) { x.c.Decrypt(dst, src, x.iv(s)) }
func (x xtsCipher) encrypt(dst, src []byte, s uint64) { x.c.Encrypt(dst, src, x.iv(s)) }

type cbcCipher struct {
	b       cipher.Block
	essiv   cipher.Block // nil: plain IV
	plain32 bool
}

func (c cbcCipher) iv(s uint64) []byte {
	iv := make([]byte, aes.BlockSize)
	if c.plain32 {
		s &= 0xffffffff
	}
	binary.LittleEndian.PutUint64(iv, s)
	if c.essiv != nil {
		c.essiv.Encrypt(iv, iv)
	}
	return iv
}
func (c cbcCipher) decrypt(dst, src []byte, s uint64) {
	cipher.NewCBCDecrypter(c.b, c.iv(s)).CryptBlocks(dst, src)
}
func (c cbcCipher) encrypt(dst, src []byte, s uint64) {
	cipher.NewCBCEncrypter(c.b, c.iv(s)).CryptBlocks(dst, src)
}
