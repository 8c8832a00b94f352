package luks

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/argon2"
)

func hashFunc(name string) (func() hash.Hash, error) {
	switch name {
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	case "sha384":
		return sha512.New384, nil
	}
	return nil, fmt.Errorf("hash %q: %w", name, ErrUnsupported)
}

// derive turns the secret into a key of n bytes with the keyslot's KDF.
func (k KDF) derive(secret []byte, n int) ([]byte, error) {
	switch k.Type {
	case "pbkdf2":
		h, err := hashFunc(k.Hash)
		if err != nil {
			return nil, err
		}
		return pbkdf2.Key(h, string(secret), k.Salt, k.Iterations, n)
	case "argon2i":
		return argon2.Key(secret, k.Salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.CPUs), uint32(n)), nil
	case "argon2id":
		return argon2.IDKey(secret, k.Salt, uint32(k.Time), uint32(k.MemoryKiB), uint8(k.CPUs), uint32(n)), nil
	}
	return nil, fmt.Errorf("kdf %q: %w", k.Type, ErrUnsupported)
}

// Unlock tries secret on every keyslot and returns the volume key and
// the keyslot it opened; ErrNoKey when none matches.
func (h *Header) Unlock(dev io.ReaderAt, secret []byte) ([]byte, int, error) {
	for _, ks := range h.Slots {
		key, err := h.tryslot(dev, ks, secret)
		if err != nil {
			return nil, -1, fmt.Errorf("luks keyslot %d: %w", ks.ID, err)
		}
		if key != nil {
			return key, ks.ID, nil
		}
	}
	return nil, -1, ErrNoKey
}

// tryslot gives the volume key, or nil when secret does not open ks.
func (h *Header) tryslot(dev io.ReaderAt, ks Keyslot, secret []byte) ([]byte, error) {
	slotKey, err := ks.KDF.derive(secret, ks.AreaKeyBytes)
	if err != nil {
		return nil, err
	}
	c, err := newCipher(ks.Cipher, slotKey)
	if err != nil {
		return nil, err
	}
	n := ks.KeyBytes * ks.Stripes
	padded := (n + 511) &^ 511
	if int64(padded) > ks.AreaSize {
		padded = n // a LUKS1 area may end with the split key
	}
	raw := make([]byte, padded)
	if _, err := dev.ReadAt(raw, ks.AreaOff); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading key material: %w", err)
	}
	plain := make([]byte, len(raw))
	for s := 0; s*512 < len(raw); s++ {
		end := min((s+1)*512, len(raw))
		if (end-s*512)%16 != 0 {
			return nil, fmt.Errorf("key material of %d bytes is not whole blocks: %w", n, ErrCorrupt)
		}
		c.decrypt(plain[s*512:end], raw[s*512:end], uint64(s))
	}
	afh, err := hashFunc(ks.AFHash)
	if err != nil {
		return nil, err
	}
	key := afMerge(plain[:n], ks.KeyBytes, ks.Stripes, afh)
	if ok, err := h.checkKey(key); err != nil || !ok {
		return nil, err
	}
	return key, nil
}

// checkKey compares the volume key's PBKDF2 digest with the header's.
func (h *Header) checkKey(key []byte) (bool, error) {
	hf, err := hashFunc(h.digest.hash)
	if err != nil {
		return false, err
	}
	d, err := pbkdf2.Key(hf, string(key), h.digest.salt, h.digest.iterations, len(h.digest.value))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(d, h.digest.value) == 1, nil
}

// afMerge undoes the anti-forensic split: each stripe but the last is
// XORed in and diffused with the hash; the last XOR gives the key.
func afMerge(split []byte, size, stripes int, h func() hash.Hash) []byte {
	d := make([]byte, size)
	for i := 0; i < stripes-1; i++ {
		xor(d, split[i*size:(i+1)*size])
		diffuse(d, h)
	}
	xor(d, split[(stripes-1)*size:stripes*size])
	return d
}

func xor(d, s []byte) {
	for i := range d {
		d[i] ^= s[i]
	}
}

// diffuse hashes d in digest-sized blocks, each prefixed by its number.
func diffuse(d []byte, hf func() hash.Hash) {
	h := hf()
	ds := h.Size()
	var iv [4]byte
	for i := 0; i*ds < len(d); i++ {
		blk := d[i*ds : min((i+1)*ds, len(d))]
		h.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		h.Write(iv[:])
		h.Write(blk)
		copy(blk, h.Sum(nil))
	}
}
