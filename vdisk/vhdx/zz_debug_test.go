package vhdx

import (
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

func TestZZMutate(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzOpen/*")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "parent.vhdx"), nil, 0o644)
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		s := seeds[i%len(seeds)]
		text := strings.SplitN(string(fileBytes(t, s)), "\n", 3)
		in0, _ := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(text[1], "[]byte("), ")"))
		in := []byte(in0)
		for k := 0; k < 1+r.Intn(8); k++ {
			in[r.Intn(len(in))] = byte(r.Intn(256))
		}
		start := time.Now()
		img := fuzzImage(in)
		for _, w := range []bool{false, true} {
			mf := cappedFile{vdisk.NewMemFile(filepath.Join(dir, "child.vhdx"), img), 3 * fuzzFileSize}
			d, err := Open(mf, fuzzOptions(mf, w))
			if err == nil {
				exercise(t, d, w)
				d.Close()
			}
		}
		if el := time.Since(start); el > 2*time.Second {
			os.WriteFile("/tmp/vhdxw/slow.bin", in, 0o644)
			t.Fatalf("iteration %d seed %s took %v", i, s, el)
		}
	}
}
