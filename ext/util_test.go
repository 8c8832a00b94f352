package ext

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func runOut(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// statTime finds "<field>: 0xSECS:EXTRA -- DATE" in debugfs stat output.
func statTime(t *testing.T, stat, field string) (string, uint32) {
	t.Helper()
	for _, line := range strings.Split(stat, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, field+": ")
		if !ok {
			continue
		}
		hex, date, ok := strings.Cut(rest, " -- ")
		_, ext, ok2 := strings.Cut(hex, ":")
		if !ok || !ok2 {
			break
		}
		x, err := strconv.ParseUint(strings.TrimPrefix(ext, "0x"), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return date, uint32(x)
	}
	t.Fatalf("no %s in debugfs stat:\n%s", field, stat)
	return "", 0
}
