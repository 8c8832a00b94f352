package bitlocker

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// stretchRounds is how many SHA-256 rounds BitLocker spends on a password
// or recovery password before it becomes a key.
const stretchRounds = 0x100000

// RecoveryKey turns a 48-digit recovery password into its 16-byte key:
// each of the eight groups is a multiple of 11 below 720896, and group/11
// is a little-endian 16-bit word.
func RecoveryKey(pw string) ([]byte, error) {
	groups := strings.Split(strings.TrimSpace(pw), "-")
	if len(groups) != 8 {
		return nil, errors.New("a recovery password has 8 groups of 6 digits")
	}
	key := make([]byte, 16)
	for i, g := range groups {
		n, err := strconv.Atoi(g)
		if len(g) != 6 || err != nil || n%11 != 0 || n/11 > 0xffff {
			return nil, fmt.Errorf("recovery password group %d is not valid", i+1)
		}
		binary.LittleEndian.PutUint16(key[2*i:], uint16(n/11))
	}
	return key, nil
}

// recoveryHash is what the stretch loop starts from for a recovery password.
func recoveryHash(key []byte) [32]byte { return sha256.Sum256(key) }

// passwordHash is what it starts from for a user password: SHA-256 twice
// over the password in UTF-16LE.
func passwordHash(pw string) [32]byte {
	u := utf16.Encode([]rune(pw))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

// stretch is BitLocker's key stretching: SHA-256 over (last hash,
// password hash, salt, counter), 2^20 times.
func stretch(hash [32]byte, salt []byte) []byte {
	buf := make([]byte, 88)
	copy(buf[32:], hash[:])
	copy(buf[64:80], salt)
	for i := uint64(0); i < stretchRounds; i++ {
		binary.LittleEndian.PutUint64(buf[80:], i)
		h := sha256.Sum256(buf)
		copy(buf, h[:])
	}
	return buf[:32]
}

// BEKKey is what a .BEK startup or recovery key file holds: the GUID of
// the protector it opens and the 32-byte key.
type BEKKey struct {
	GUID string
	Key  []byte
}

// ParseBEK reads a .BEK file: a metadata dataset whose startup-key entry
// is an external key holding a key datum.
func ParseBEK(b []byte) (BEKKey, error) {
	if len(b) < 0x30 {
		return BEKKey{}, errors.New("key file: too short")
	}
	size, hdr := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[8:]))
	if hdr != 0x30 || size < hdr || size > len(b) {
		return BEKKey{}, fmt.Errorf("key file: dataset of %d bytes (header %d) in %d", size, hdr, len(b))
	}
	ds, err := parseDatums(b[hdr:size], 0)
	if err != nil {
		return BEKKey{}, fmt.Errorf("key file: %w", err)
	}
	for _, d := range ds {
		if d.Entry != entryStartupKey || d.Value != valueExternal {
			continue
		}
		if k, ok := d.nested(valueKey); ok {
			_, key := k.keyBytes()
			return BEKKey{GUID: formatGUID(d.Body[:16]), Key: key}, nil
		}
	}
	return BEKKey{}, errors.New("key file: no external key in it")
}
