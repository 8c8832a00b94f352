package vhdx

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// crashImage makes a VHDX in the state qemu leaves it in when it dies
// after logging a BAT update but before writing it in place: qemu-io
// writes through the log (qemu appends the block, logs the BAT sector,
// applies it, and clears LogGuid on close); we then put back the BAT
// entries the active log entry updates and set LogGuid again. qemu
// itself confirms the result is a pending, valid log (it refuses to open
// it read-only and replays it with `check -r all`).
func crashImage(t *testing.T, dir string) (img, want string) {
	t.Helper()
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	img, before := join(dir, "crash.vhdx"), join(dir, "before.vhdx")
	qemuImg(t, "create", "-f", "vhdx", "-o", "block_size=1M", img, "64M")
	testutil.CopyFile(t, img, before)
	testutil.Run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0xab 3M 64k", img)
	testutil.CopyFile(t, img, before+".1")
	testutil.Run(t, "qemu-io", "-f", "vhdx", "-c", "write -P 0xcd 10M 4k", img)

	b := fileBytes(t, img)
	f := vdisk.NewMemFile(img, b)
	h, slot, err := readHeaders(f)
	if err != nil {
		t.Fatal(err)
	}
	batR, _, err := readRegions(f, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The active sequence is the last entry alone (qemu moved the tail
	// past the first); undo only its BAT update: block 10's entry.
	g := geometry{blockSize: mib, chunkRatio: (1 << 23) * 512 / mib}
	at := batR.offset + g.payloadIndex(10)*8
	copy(b[at:at+8], fileBytes(t, before+".1")[at:at+8])
	if batEntry(b[at]).state() == stateFullyPresent {
		t.Fatal("block 10 still allocated in the BAT: the log would not matter")
	}
	var logGUID GUID
	copy(logGUID[:], findLastLogEntry(t, b, h))
	h.LogGUID = logGUID
	copy(b[headerOffset1+int64(slot)*headerOffset1:], h.encode())
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}

	want = join(dir, "want.raw")
	w := make([]byte, 64*mib)
	copy(w[3*mib:], bytes.Repeat([]byte{0xab}, 64*kib))
	copy(w[10*mib:], bytes.Repeat([]byte{0xcd}, 4*kib))
	if err := os.WriteFile(want, w, 0o644); err != nil {
		t.Fatal(err)
	}
	return img, want
}

// findLastLogEntry returns the LogGuid bytes of the highest-numbered
// "loge" entry in the ring.
func findLastLogEntry(t *testing.T, b []byte, h header) []byte {
	var best []byte
	var bestSeq uint64
	for at := int64(h.LogOffset); at < int64(h.LogOffset)+int64(h.LogLength); at += logSector {
		if string(b[at:at+4]) == "loge" {
			if s := uint64(b[at+16]) | uint64(b[at+17])<<8; s >= bestSeq {
				bestSeq, best = s, b[at+32:at+48]
			}
		}
	}
	if best == nil {
		t.Fatal("qemu left no log entry")
	}
	return best
}

// TestLogReplay: read-only, the log is replayed in memory and the file is
// untouched; writable, it is replayed into the file and LogGuid cleared.
// qemu is the oracle both ways.
func TestLogReplay(t *testing.T) {
	dir := t.TempDir()
	img, want := crashImage(t, dir)

	out, err := exec.Command("qemu-img", "info", "-f", "vhdx", img).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "log") {
		t.Fatalf("qemu should refuse a pending log read-only; it said: %s", out)
	}
	t.Logf("qemu-img info on the crash image: %s", strings.TrimSpace(string(out)))
	qemuReplayed := join(dir, "qemu.vhdx")
	testutil.CopyFile(t, img, qemuReplayed)
	qemuImg(t, "check", "-r", "all", "-f", "vhdx", qemuReplayed)
	testutil.QemuCompare(t, "vhdx", qemuReplayed, want)

	before := fileHash(t, img)
	d := openPath(t, img, false, vdisk.Options{})
	sameBytes(t, "read-only replay", readAll(t, d), fileBytes(t, want))
	d.Close()
	if fileHash(t, img) != before {
		t.Fatal("read-only open wrote the file")
	}

	d = openPath(t, img, true, vdisk.Options{})
	d.Close()
	f, _ := vdisk.OpenOSFile(img, false)
	h, _, err := readHeaders(f)
	f.Close()
	if err != nil || !h.LogGUID.IsZero() {
		t.Fatalf("after writable open: header %+v, %v; want LogGuid zero", h, err)
	}
	// qemu now opens it read-only without complaint and sees the data.
	testutil.QemuCheck(t, "vhdx", img)
	testutil.QemuCompare(t, "vhdx", img, want)
}
