package bitlocker

import (
	"os"
	"testing"
)

// FuzzParseMetadata: any bytes as a metadata block parse or fail with an
// error, never a panic.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []synth{
		{version: 2, method: AES128XTS, fvek: make([]byte, 32), state: StateEncrypted, size: 8 << 20, encSize: 8 << 20},
		{version: 2, method: AES256Diffuser, fvek: make([]byte, 64), state: StateSwitching, size: 8 << 20, encSize: 1 << 20, recovery: synthRecovery},
	} {
		f.Add(s.metadata())
	}
	f.Add([]byte(Signature + "\x02\x00\x02\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			return
		}
		_ = checkCRC(b, m.Size)
		m.Protectors()
	})
}

// FuzzOpenVolume: a volume whose first megabytes are anything opens or
// fails with an error; an opened one reads without panicking.
func FuzzOpenVolume(f *testing.F) {
	s := synth{version: 2, method: AES128CBC, fvek: make([]byte, 16), state: StateEncrypted, size: 8 << 20, encSize: 8 << 20}
	vol := s.build(f, make([]byte, 8<<20))
	// seeds: the boot sector and the first metadata block, which the
	// fuzzer rewrites in place
	f.Add(vol[:512], vol[synthMeta1:synthMeta1+4096])
	f.Fuzz(func(t *testing.T, boot, meta []byte) {
		v := patchDev{base: memDev(vol), at: []int64{0}, data: [][]byte{boot}}
		for _, o := range s.offsets() {
			v.at, v.data = append(v.at, int64(o)), append(v.data, meta)
		}
		d, _, _, err := Open(v, nil)
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		d.ReadAt(buf, 0)
		d.ReadAt(buf, d.Size()-int64(len(buf)))
	})
}

// FuzzParseBEK: any bytes as a .BEK key file.
func FuzzParseBEK(f *testing.F) {
	key := keyDatum(0, 0x2000, make([]byte, 32))
	ext := datum(entryStartupKey, valueExternal, make([]byte, 16), u64(0), key)
	ds := append(u32(uint32(0x30+len(ext))), u32(1)...)
	ds = append(ds, u32(0x30)...)
	ds = append(ds, u32(uint32(0x30+len(ext)))...)
	ds = append(ds, make([]byte, 0x20)...)
	f.Add(append(ds, ext...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseBEK(b)
	})
}

// patchDev is base with some byte ranges replaced, read-only: the fuzzer
// changes a few kilobytes of a large volume without copying it.
type patchDev struct {
	base memDev
	at   []int64
	data [][]byte
}

func (d patchDev) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.base.ReadAt(p, off)
	for i, a := range d.at {
		src := d.data[i]
		lo, hi := max(a, off), min(a+int64(len(src)), off+int64(n))
		if lo < hi {
			copy(p[lo-off:hi-off], src[lo-a:hi-a])
		}
	}
	return n, err
}
func (d patchDev) WriteAt(p []byte, off int64) (int, error) { return 0, os.ErrPermission }
func (d patchDev) Size() int64                              { return d.base.Size() }
