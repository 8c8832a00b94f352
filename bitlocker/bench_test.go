package bitlocker

import (
	"testing"
)

// BenchmarkSectors measures decryption and encryption throughput per
// method on 1 MiB runs of 512-byte sectors (make bench).
func BenchmarkSectors(b *testing.B) {
	key := make([]byte, 64)
	for _, m := range []uint16{AES128CBC, AES256CBC, AES128Diffuser, AES256Diffuser, AES128XTS, AES256XTS} {
		c, err := newSectorCipher(m, key, 512)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for _, dir := range []string{"decrypt", "encrypt"} {
			b.Run(MethodName(m)+" "+dir, func(b *testing.B) {
				b.SetBytes(int64(len(buf)))
				for i := 0; i < b.N; i++ {
					for off := 0; off < len(buf); off += 512 {
						if dir == "decrypt" {
							c.decrypt(buf[off:off+512], uint64(off))
						} else {
							c.encrypt(buf[off:off+512], uint64(off))
						}
					}
				}
			})
		}
	}
}

// BenchmarkStretch is the cost of trying one password or recovery
// password on one protector.
func BenchmarkStretch(b *testing.B) {
	for i := 0; i < b.N; i++ {
		stretch(recoveryHash(make([]byte, 16)), make([]byte, 16))
	}
}
