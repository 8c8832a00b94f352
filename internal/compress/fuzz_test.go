package compress

import (
	"bytes"
	"testing"
)

// FuzzLZNT1 decompresses arbitrary bytes into one compression unit.
func FuzzLZNT1(f *testing.F) {
	f.Add([]byte{0x05, 0xb0, 0x00, 'a', 'b', 'c', 0x02, 0x20, 0x00, 0x00})
	f.Add(append([]byte{0xff, 0x3f}, bytes.Repeat([]byte{'x'}, 4096)...))
	f.Add([]byte{0x10, 0xb0, 0x00, 'A', 'B', 0xfc, 0x0f, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := make([]byte, 65536)
		n, _ := LZNT1(dst, b)
		if n > len(dst) {
			t.Fatalf("produced %d bytes into %d", n, len(dst))
		}
	})
}

// fuzzChunk decodes arbitrary bytes into an output of a chosen size and
// checks the decoder leaves its input alone and gives the same answer
// twice; Go's bounds checks catch any read outside the input.
func fuzzChunk(t *testing.T, dec func(in, out []byte) error, in []byte, size int) {
	keep := bytes.Clone(in)
	a, b := make([]byte, size), make([]byte, size)
	errA, errB := dec(in, a), dec(in, b)
	if !bytes.Equal(in, keep) {
		t.Fatal("decoder changed its input")
	}
	if (errA == nil) != (errB == nil) || (errA == nil && !bytes.Equal(a, b)) {
		t.Fatal("decoder is not deterministic")
	}
}

// FuzzXpress decodes arbitrary XPRESS Huffman chunks of up to 16 KiB.
func FuzzXpress(f *testing.F) {
	f.Add(make([]byte, 256), uint16(4096))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		fuzzChunk(t, XpressHuffman, in, int(size)%16384+1)
	})
}

// FuzzLZX decodes arbitrary LZX chunks of up to 32 KiB.
func FuzzLZX(f *testing.F) {
	f.Add([]byte{0x30, 0x00, 0x00, 0x10, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b'}, uint16(2))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		fuzzChunk(t, LZX, in, int(size)%32768+1)
	})
}

// FuzzCabLZX decodes arbitrary bytes as one cabinet folder's LZX stream
// of a few frames, fed in pieces as CFDATA blocks are.
func FuzzCabLZX(f *testing.F) {
	f.Add([]byte{0x00, 0x30, 0x00, 0x00, 0x10, 0x00}, uint8(15), uint16(100))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint8(21), uint16(32768))
	f.Fuzz(func(t *testing.T, in []byte, bits uint8, size uint16) {
		feed := in
		more := func() ([]byte, error) {
			if len(feed) == 0 {
				return nil, errBadChunk
			}
			n := min(len(feed), 17)
			b := feed[:n]
			feed = feed[n:]
			return b, nil
		}
		d, err := NewCabLZX(uint(bits%8)+15, more)
		if err != nil {
			return
		}
		for i := 0; i < 3; i++ {
			out, err := d.Frame(int(size)%32768 + 1)
			if err != nil {
				return
			}
			if len(out) != int(size)%32768+1 {
				t.Fatalf("frame of %d bytes, asked %d", len(out), int(size)%32768+1)
			}
		}
	})
}
