package testutil

import (
	"bytes"
	"strings"
	"testing"
)

// CopyFile copies an image or volume for a test, keeping its holes (a
// 64 GiB dynamic disk stays a few MiB), with cp as the copier.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	Run(t, "cp", "--sparse=always", src, dst)
}

// FirstDiff is the first byte where a and b differ (the shorter length
// when one is a prefix of the other), or -1 when they are equal.
func FirstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// QemuCompare fails the test unless qemu-img reads the image of the given
// format (qemu's name: qcow2, vpc, vhdx, vmdk) as the same disk as the raw
// file.
func QemuCompare(t testing.TB, format, img, rawPath string) {
	t.Helper()
	RequireTool(t, "qemu-img", "qemu-utils")
	out := Run(t, "qemu-img", "compare", "-f", format, "-F", "raw", img, rawPath)
	if !strings.Contains(out, "Images are identical") {
		t.Fatalf("qemu-img compare %s %s:\n%s", img, rawPath, out)
	}
}

// QemuCheck fails the test unless qemu-img check finds no error and no
// leaked cluster in the image; it returns qemu's report.
func QemuCheck(t testing.TB, format, img string) string {
	t.Helper()
	RequireTool(t, "qemu-img", "qemu-utils")
	out := Run(t, "qemu-img", "check", "-f", format, img)
	if !strings.Contains(out, "No errors were found") || strings.Contains(out, "leaked") {
		t.Fatalf("qemu-img check %s:\n%s", img, out)
	}
	return out
}
