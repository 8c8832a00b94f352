package bitlocker

import (
	"crypto/aes"
	"crypto/subtle"
	"errors"
)

// errMAC means a wrapped key did not authenticate: the wrong secret.
var errMAC = errors.New("the key does not authenticate")

// ccmOpen decrypts BitLocker's AES-CCM: a 12-byte nonce, a 16-byte MAC
// stored before the ciphertext, no associated data. Go's standard library
// has no CCM, and this is all of it that BitLocker needs.
func ccmOpen(key, nonce, mac, ct []byte) ([]byte, error) {
	if len(nonce) != 12 || len(mac) != 16 {
		return nil, errors.New("aes-ccm: bad nonce or mac size")
	}
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	ctr := func(i int) []byte {
		b := make([]byte, 16)
		b[0] = 2 // L-1, with L = 15-12 bytes of counter
		copy(b[1:], nonce)
		b[13], b[14], b[15] = byte(i>>16), byte(i>>8), byte(i)
		c.Encrypt(b, b)
		return b
	}
	pt := make([]byte, len(ct))
	for i := 0; i < len(ct); i += 16 {
		ks := ctr(i/16 + 1)
		for j := i; j < len(ct) && j < i+16; j++ {
			pt[j] = ct[j] ^ ks[j-i]
		}
	}
	s0 := ctr(0)
	want := make([]byte, 16)
	for i := range want {
		want[i] = mac[i] ^ s0[i]
	}
	// CBC-MAC over B0 and the zero-padded plaintext.
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
	if subtle.ConstantTimeCompare(x, want) != 1 {
		return nil, errMAC
	}
	return pt, nil
}
