package luks

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func FuzzReadHeader(f *testing.F) {
	v1 := make([]byte, 4096)
	copy(v1, "LUKS\xba\xbe\x00\x01aes")
	copy(v1[40:], "xts-plain64")
	copy(v1[72:], "sha256")
	binary.BigEndian.PutUint32(v1[104:], 8)
	binary.BigEndian.PutUint32(v1[108:], 64)
	binary.BigEndian.PutUint32(v1[164:], 10)
	binary.BigEndian.PutUint32(v1[208:], v1SlotActive)
	binary.BigEndian.PutUint32(v1[212:], 1)
	binary.BigEndian.PutUint32(v1[248:], 1)
	binary.BigEndian.PutUint32(v1[252:], 2)
	f.Add(v1)
	f.Add([]byte(`{"keyslots":{"0":{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":2,"hash":"sha256"},"area":{"type":"raw","offset":"512","size":"1024","encryption":"aes-xts-plain64","key_size":64},"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1,"salt":"AAAA"}}},"segments":{"0":{"type":"crypt","offset":"4096","size":"dynamic","iv_tweak":"0","encryption":"aes-xts-plain64","sector_size":512}},"digests":{"0":{"type":"pbkdf2","keyslots":["0"],"segments":["0"],"hash":"sha256","iterations":1,"salt":"AAAA","digest":"AAAA"}},"config":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && b[0] == '{' {
			if h, err := parseV2JSON(b, 1<<20); err == nil {
				tryAll(h, make([]byte, 1<<20))
			}
			return
		}
		dev := bytes.NewReader(b)
		if h, err := ReadHeader(dev, int64(len(b))); err == nil {
			tryAll(h, b)
		}
	})
}

// tryAll runs the keyslot code on whatever a header names, with
// iteration counts capped so that the fuzzer stays fast.
func tryAll(h *Header, b []byte) {
	h.digest.iterations = min(h.digest.iterations, 2)
	for i := range h.Slots {
		k := &h.Slots[i].KDF
		k.Iterations, k.Time, k.MemoryKiB = min(k.Iterations, 2), min(k.Time, 1), min(k.MemoryKiB, 64)
	}
	h.Unlock(bytes.NewReader(b), []byte("x"))
}
