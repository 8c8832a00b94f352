package hive

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz seeds (made by this engine,
// so no third-party file is copied) when OFFVM_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("OFFVM_WRITE_SEEDS") != "1" {
		t.Skip("set OFFVM_WRITE_SEEDS=1 to regenerate the fuzz seeds")
	}
	before, after := twoStates(t)
	write := func(target, name string, args ...[]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, a := range args {
			s += fmt.Sprintf("[]byte(%q)\n", a)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("FuzzParse", "small-hive", before)
	write("FuzzParse", "truncated", before[:5000])
	write("FuzzParseReaderAt", "small-hive", before)
	write("FuzzParseReaderAt", "truncated", before[:5000])
	write("FuzzParseReaderAt", "dirty", dirty(before))
	write("FuzzReplay", "new-format-log", dirty(before), newLog(before, after, 2))
	write("FuzzReplay", "old-format-log", dirty(before), oldLog(before, after, 0))
}
