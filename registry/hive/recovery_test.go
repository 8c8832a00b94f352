package hive_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/registry/hive"
)

// Windows' recovery rules on a real dirty hive (regipy's SYSTEM_B, left
// dirty by Windows 10 with its two new-format logs), damaged exactly as
// each case says. The reference for "as the primary holds it" is
// hivexregedit's export of the primary file (hivex never reads logs); for
// "recovered" it is the replay of the undamaged files, whose ComputerName
// is regipy's DESKTOP-PM6C56D, and hivexget reads it from what we write.
func TestRecoveryRules(t *testing.T) {
	dir := t.TempDir()
	primary, err := os.ReadFile(corpusCopy(t, "regipy/SYSTEM_B.xz", dir, "orig"))
	if err != nil {
		t.Fatal(err)
	}
	l1 := hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG1.xz")
	l2 := hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG2.xz")
	if hive.Clean(primary) || hive.Clean(flip0(primary)) {
		t.Fatal("Clean() says a dirty (or damaged) base block is clean")
	}
	if c := hive.ReadCorpus(t, "regipy/SYSTEM.xz"); !hive.Clean(c[:4096]) {
		t.Fatal("Clean() says the clean SYSTEM hive is not")
	}
	asIs := hivexExport(t, filepath.Join(dir, "orig"), `\`)
	ref, err := hive.Parse(append([]byte(nil), primary...), l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	recovered := ourExport(t, ref.Root())
	if recovered == asIs {
		t.Fatal("the logs change nothing: the cases below could not tell replay from no replay")
	}

	flip := func(b []byte, at int) []byte { b = append([]byte(nil), b...); b[at] ^= 0xFF; return b }
	resum := func(b []byte) []byte { binary.LittleEndian.PutUint32(b[508:], xorSumOf(b)); return b }
	minor9 := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[24:], 9)
		return resum(b)
	}
	// newer makes the primary a later dirty state than every log entry:
	// all of them are older, skipped by sequence number.
	newer := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[4:], 1_000_001)
		binary.LittleEndian.PutUint32(b[8:], 1_000_000)
		return resum(b)
	}
	remnants := func(b []byte) []byte {
		junk := bytes.Repeat([]byte("remnant of an older write "), 4000)
		return append(append([]byte(nil), b...), junk...)
	}
	type want int
	const (
		readOnly want = iota // as the primary holds it, ReadOnly set, naming logs
		recovery             // as Windows recovers it
		refused              // no hive: ErrDirty
		damaged              // read partially; defects block writing
	)
	cases := []struct {
		name       string
		primary    []byte
		logs       map[string][]byte // file name → content
		want       want
		mentions   []string // in the ReadOnly or refusal message
		recoversBB bool
	}{
		{"only log has a wrong base-block checksum", primary, map[string][]byte{"SYSTEM.LOG1": flip(l1, 100)}, readOnly, []string{"SYSTEM.LOG1", "checksum"}, false},
		{"both new-format logs have broken headers", primary, map[string][]byte{"SYSTEM.LOG1": flip(l1, 0), "SYSTEM.LOG2": flip(l2, 1)}, readOnly, []string{"SYSTEM.LOG1", "SYSTEM.LOG2"}, false},
		{"entries of both logs fail their hashes", primary, map[string][]byte{"SYSTEM.LOG1": flip(l1, 512+4096), "SYSTEM.LOG2": flip(l2, 512+4096)}, readOnly, []string{"Marvin32"}, false},
		{"dirty, no log at all", primary, nil, readOnly, []string{"no transaction log"}, false},
		{"every log entry older than the primary", newer(primary), map[string][]byte{"SYSTEM.LOG1": l1, "SYSTEM.LOG2": l2}, readOnly, []string{"1000000"}, false},
		{"base block checksum wrong, logs sound", flip(primary, 508), map[string][]byte{"SYSTEM.LOG1": l1, "SYSTEM.LOG2": l2}, recovery, nil, true},
		{"base block minor version 9, logs sound", minor9(primary), map[string][]byte{"SYSTEM.LOG1": l1, "SYSTEM.LOG2": l2}, recovery, nil, true},
		{"logs with remnants after their entries", primary, map[string][]byte{"SYSTEM.LOG1": remnants(l1), "SYSTEM.LOG2": remnants(l2)}, recovery, nil, false},
		{"one log broken, the other sound", primary, map[string][]byte{"SYSTEM.LOG1": flip(l1, 100), "SYSTEM.LOG2": l2}, recovery, nil, false},
		{"base block checksum wrong, no log", flip(primary, 508), nil, refused, []string{"checksum"}, false},
		{"base block checksum wrong, logs broken", flip(primary, 508), map[string][]byte{"SYSTEM.LOG1": flip(l1, 0), "SYSTEM.LOG2": flip(l2, 0)}, refused, []string{"SYSTEM.LOG1", "SYSTEM.LOG2"}, false},
		{"truncated dirty hive", primary[:len(primary)/2], map[string][]byte{"SYSTEM.LOG1": l1, "SYSTEM.LOG2": l2}, damaged, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			p := filepath.Join(d, "SYSTEM")
			writeFile(t, p, c.primary)
			for name, b := range c.logs {
				writeFile(t, filepath.Join(d, name), b)
			}
			h, err := hive.Open(p)
			switch c.want {
			case refused:
				if !errors.Is(err, hive.ErrDirty) {
					t.Fatalf("got %v, want a refusal wrapping ErrDirty", err)
				}
				mentions(t, err.Error(), c.mentions)
				return
			case damaged:
				if err != nil {
					if !errors.Is(err, hive.ErrCorrupt) && !errors.Is(err, hive.ErrDirty) {
						t.Fatalf("error %v wraps neither ErrCorrupt nor ErrDirty", err)
					}
					return
				}
				walk(h.Root(), func(*hive.Key) {})
				if _, err := h.Serialize(); err == nil {
					t.Fatal("a truncated hive the logs do not complete was serialized")
				}
				t.Logf("problems: %v", h.Problems())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ourExport(t, h.Root())
			switch c.want {
			case readOnly:
				ro := h.ReadOnly()
				if !errors.Is(ro, hive.ErrDirty) {
					t.Fatalf("ReadOnly() = %v, want an error wrapping ErrDirty", ro)
				}
				mentions(t, ro.Error(), c.mentions)
				if got != asIs {
					t.Fatalf("not shown as the primary holds it (hivex): %s", firstDiff(got, asIs))
				}
				if h.Replayed().Entries != 0 {
					t.Fatalf("replayed %+v", h.Replayed())
				}
			case recovery:
				if ro := h.ReadOnly(); ro != nil {
					t.Fatalf("recovered hive marked read-only: %v", ro)
				}
				if got != recovered {
					t.Fatalf("differs from the replay of the undamaged files: %s", firstDiff(got, recovered))
				}
				if h.Replayed().RecoveredBaseBlock != c.recoversBB {
					t.Errorf("RecoveredBaseBlock = %v, want %v", h.Replayed().RecoveredBaseBlock, c.recoversBB)
				}
				checkComputerName(t, h, "DESKTOP-PM6C56D")
			}
		})
	}
}

func mentions(t *testing.T, msg string, words []string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not mention %q", msg, w)
		}
	}
}

// checkComputerName writes h out and reads ComputerName back with hivexget.
func checkComputerName(t *testing.T, h *hive.Hive, want string) {
	t.Helper()
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "w")
	writeFile(t, p, out)
	got, err := exec.Command("hivexget", p, `\ControlSet001\Control\ComputerName\ComputerName`, "ComputerName").Output()
	if err != nil || strings.TrimSpace(string(got)) != want {
		t.Fatalf("hivexget ComputerName of the recovered hive: %q, %v; want %s", got, err, want)
	}
}

// xorSumOf is the regf base block checksum (the engine's own is internal).
func xorSumOf(b []byte) uint32 {
	var c uint32
	for i := 0; i < 508; i += 4 {
		c ^= binary.LittleEndian.Uint32(b[i:])
	}
	switch c {
	case 0:
		c = 1
	case 0xFFFFFFFF:
		c = 0xFFFFFFFE
	}
	return c
}

func flip0(b []byte) []byte { b = append([]byte(nil), b...); b[0] ^= 0xFF; return b }
