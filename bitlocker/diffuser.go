package bitlocker

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// diffuserCipher is Vista/7's AES-CBC with the Elephant diffuser: the
// plaintext is XORed with a sector key, mixed by diffusers A and B, then
// AES-CBC encrypted (Niels Ferguson, "AES-CBC + Elephant diffuser", 2006).
type diffuserCipher struct {
	cbc   cbcCipher
	tweak cipher.Block
}

// sectorKey is E(tweak, off) || E(tweak, off with byte 15 = 0x80).
func (x *diffuserCipher) sectorKey(off uint64) []byte {
	k := make([]byte, 32)
	binary.LittleEndian.PutUint64(k, off)
	binary.LittleEndian.PutUint64(k[16:], off)
	k[31] = 0x80
	x.tweak.Encrypt(k[:16], k[:16])
	x.tweak.Encrypt(k[16:], k[16:])
	return k
}

func xorKey(b, k []byte) {
	for i := 0; i < len(b); i += len(k) {
		subtle.XORBytes(b[i:], b[i:], k)
	}
}

func (x *diffuserCipher) decrypt(b []byte, off uint64) {
	x.cbc.decrypt(b, off)
	w := words(b)
	diffuserBDecrypt(w)
	diffuserADecrypt(w)
	putWords(b, w)
	xorKey(b, x.sectorKey(off))
}

func (x *diffuserCipher) encrypt(b []byte, off uint64) {
	xorKey(b, x.sectorKey(off))
	w := words(b)
	diffuserAEncrypt(w)
	diffuserBEncrypt(w)
	putWords(b, w)
	x.cbc.encrypt(b, off)
}

func words(b []byte) []uint32 {
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

func putWords(b []byte, w []uint32) {
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
}

var (
	rotA = [4]int{9, 0, 13, 0}
	rotB = [4]int{0, 10, 0, 25}
)

// The diffusers index words cyclically; wrap avoids a division per word.
func wrap(i, n int) int {
	switch {
	case i < 0:
		return i + n
	case i >= n:
		return i - n
	}
	return i
}

func diffuserADecrypt(d []uint32) {
	n := len(d)
	for c := 0; c < 5; c++ {
		for i := 0; i < n; i++ {
			d[i] += d[wrap(i-2, n)] ^ bits.RotateLeft32(d[wrap(i-5, n)], rotA[i&3])
		}
	}
}

func diffuserAEncrypt(d []uint32) {
	n := len(d)
	for c := 0; c < 5; c++ {
		for i := n - 1; i >= 0; i-- {
			d[i] -= d[wrap(i-2, n)] ^ bits.RotateLeft32(d[wrap(i-5, n)], rotA[i&3])
		}
	}
}

func diffuserBDecrypt(d []uint32) {
	n := len(d)
	for c := 0; c < 3; c++ {
		for i := 0; i < n; i++ {
			d[i] += d[wrap(i+2, n)] ^ bits.RotateLeft32(d[wrap(i+5, n)], rotB[i&3])
		}
	}
}

func diffuserBEncrypt(d []uint32) {
	n := len(d)
	for c := 0; c < 3; c++ {
		for i := n - 1; i >= 0; i-- {
			d[i] -= d[wrap(i+2, n)] ^ bits.RotateLeft32(d[wrap(i+5, n)], rotB[i&3])
		}
	}
}
