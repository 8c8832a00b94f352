package vhdx

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

)

func BenchmarkZZFuzzBody(b *testing.B) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzOpen/*")
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "parent.vhdx"), nil, 0o644)
	var ins [][]byte
	for _, s := range seeds {
		text := strings.SplitN(string(fileBytes(b, s)), "\n", 3)
		in0, _ := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(text[1], "[]byte("), ")"))
		ins = append(ins, []byte(in0))
	}
	t := &testing.T{}
	for i := 0; i < b.N; i++ {
		img := fuzzImage(ins[i%len(ins)])
		for _, w := range []bool{false, true} {
			mf := newCappedFile(filepath.Join(dir, "child.vhdx"), img)
			d, err := Open(mf, fuzzOptions(mf, w))
			if err == nil {
				exercise(t, d, w)
				d.Close()
			}
			mf.release()
		}
	}
}
