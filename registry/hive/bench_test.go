package hive

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// bigHive builds, once, a hive the size of a real SOFTWARE hive: 500,000
// keys in a CLSID-like layout, two values each.
var bigHive = sync.OnceValues(func() ([]byte, error) {
	h := New("ROOT")
	cls, _ := h.Root().CreatePath(`Classes\CLSID`)
	for i := 0; i < 100000; i++ {
		k, err := cls.CreateSubkey(fmt.Sprintf("{%08X-0000-0000-C000-000000000046}", i))
		if err != nil {
			return nil, err
		}
		k.SetValue("", RegSz, []byte("D\x00e\x00s\x00c\x00r\x00i\x00p\x00t\x00i\x00o\x00n\x00\x00\x00"))
		for _, n := range []string{"InprocServer32", "ProgID", "TypeLib", "Version"} {
			s, _ := k.CreateSubkey(n)
			s.SetValue("", RegExpandSz, []byte("%\x00S\x00y\x00s\x00t\x00e\x00m\x00R\x00o\x00o\x00t\x00%\x00\\\x00x\x00.\x00d\x00l\x00l\x00\x00\x00"))
			s.SetValue("ThreadingModel", RegSz, []byte("B\x00o\x00t\x00h\x00\x00\x00"))
		}
	}
	return h.Serialize()
})

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// BenchmarkOpenLookup opens the big hive and lists one key: only that
// key's cells are decoded. Reports the heap held beyond the file's bytes.
func BenchmarkOpenLookup(b *testing.B) {
	data, err := bigHive()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(data))/(1<<20), "file-MiB")
	for b.Loop() {
		base := heapMiB()
		h, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		k, err := h.Lookup(`Classes\CLSID\{0001869F-0000-0000-C000-000000000046}`)
		if err != nil {
			b.Fatal(err)
		}
		if subs, _ := k.Subkeys(); len(subs) != 4 {
			b.Fatal("wrong subkeys")
		}
		b.ReportMetric(heapMiB()-base, "heap-MiB")
		runtime.KeepAlive(h)
	}
}

// BenchmarkWalkAll decodes every key and value of the big hive.
func BenchmarkWalkAll(b *testing.B) {
	data, err := bigHive()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		base := heapMiB()
		h, _ := Parse(data)
		n := 0
		var visit func(k *Key)
		visit = func(k *Key) {
			n++
			vals, _ := k.Values()
			for _, v := range vals {
				v.Data()
			}
			subs, _ := k.Subkeys()
			for _, s := range subs {
				visit(s)
			}
		}
		visit(h.Root())
		b.ReportMetric(float64(n), "keys")
		b.ReportMetric(heapMiB()-base, "heap-MiB")
		runtime.KeepAlive(h)
	}
}

// BenchmarkSerialize rewrites the big hive after one edit.
func BenchmarkSerialize(b *testing.B) {
	data, err := bigHive()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h, _ := Parse(data)
		h.Root().SetValue("x", RegDword, []byte{1, 0, 0, 0})
		out, err := h.Serialize()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(out))/(1<<20), "out-MiB")
	}
}
