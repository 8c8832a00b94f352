package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// makeBigWindows is a GPT disk with one NTFS partition of sizeMiB
// holding a Windows tree (SYSTEM and SOFTWARE hives).
func makeBigWindows(t *testing.T, path string, sizeMiB int, system string) {
	t.Helper()
	if system == "" {
		system = makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, systemReg)
	}
	software := makeHive(t, `HKEY_LOCAL_MACHINE\SOFTWARE`, softwareReg)
	ntfs := makeNTFS(t, sizeMiB, "Windows", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", system, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", software, filepath.Join(cfg, "SOFTWARE"))
		must(t, os.MkdirAll(filepath.Join(dir, "Program Files"), 0o755))
	})
	makeDisk(t, path, "gpt", []part{{sizeMiB: sizeMiB, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs, uuid: ntfsGUID}})
}

// historyRecord is what log --json says of a commit's guest record.
type historyRecord struct {
	ID    int `json:"id"`
	Guest *struct {
		Files, Values, Omitted int
	} `json:"guest"`
	Unknown string  `json:"guest_unknown"`
	Seconds float64 `json:"guest_seconds"`
}

func lastRecord(t *testing.T, img string) historyRecord {
	t.Helper()
	var cs []historyRecord
	must(t, json.Unmarshal([]byte(mustOffvm(t, "log", "--json", img)), &cs))
	if len(cs) == 0 {
		t.Fatal("no commit in the log")
	}
	return cs[0]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// TestLongHistoryCost measures what the commit-time guest summary costs
// (make test-long; the figures are logged, never asserted): a commit of
// a 256 MiB file and 1,000 small files through the mount, and a
// reg import of 1,000 values, each with the summary on and off
// (OFFVM_HISTORY_BUDGET=0), interleaved. It checks what the records
// say: 1,001 files (and the hive files), 1,001 keys and values, with
// ntfscat and hivexget agreeing on samples.
func TestLongHistoryCost(t *testing.T) {
	if os.Getenv("OFFVM_LONG") == "" {
		t.Skip("a long test: make test-long runs it (OFFVM_LONG=1)")
	}
	const ntfsMiB = 640
	lib := t.TempDir()
	img := filepath.Join(lib, "big.img")
	// a real Windows 7 SYSTEM hive (30,756 keys) (the corpus), so that a commit into
	// it walks a hive of real size
	system := ""
	if corpus := filepath.Join("..", "..", "shared", "corpus", "regipy", "SYSTEM.xz"); haveFile(corpus) {
		system = filepath.Join(t.TempDir(), "SYSTEM")
		must(t, os.WriteFile(system, []byte(run(t, "xz", "-dc", corpus)), 0o644))
	} else {
		t.Log("../shared/corpus is absent: the SYSTEM hive is a small made-up one")
	}
	makeBigWindows(t, img, ntfsMiB, system)
	base := saveCopy(t, img, "base.img")
	big := make([]byte, 256<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	pairs := 2
	if s := os.Getenv("OFFVM_PAIRS"); s != "" {
		fmt.Sscan(s, &pairs)
	}
	files := map[string][]float64{}
	for i := 0; i < 2*pairs; i++ {
		mode := []string{"on", "off"}[i%2]
		run(t, "cp", "--sparse=always", base, img)
		os.RemoveAll(img + ".offvm-history")
		os.Remove(img + ".offvm-undo")
		env := []string{}
		if mode == "off" {
			env = append(env, "OFFVM_HISTORY_BUDGET=0")
		}
		mnt := mountLibEnv(t, lib, env)
		dir := filepath.Join(mnt, "big.img", "p1", "Program Files", "Bulk")
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644))
		for k := 0; k < 1000; k++ {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.txt", k)), []byte(strings.Repeat("x", 100+k)), 0o644))
		}
		start := time.Now()
		mustOffvm(t, "unmount", mnt)
		took := time.Since(start).Seconds()
		rec := lastRecord(t, img)
		files[mode] = append(files[mode], took)
		if mode == "on" {
			files["summary"] = append(files["summary"], rec.Seconds)
			if rec.Guest == nil || rec.Guest.Files < 1002 {
				t.Fatalf("record of the bulk commit: %+v", rec)
			}
			d := mustOffvm(t, "diff", img)
			for _, want := range []string{"+ p1:/Program Files/Bulk/big.bin (256.0 MiB)", "+ p1:/Program Files/Bulk/f0999.txt (1.1 KiB)"} {
				if !strings.Contains(d, want) {
					t.Errorf("diff lacks %q", want)
				}
			}
			raw := filepath.Join(t.TempDir(), "a.raw")
			run(t, "cp", "--sparse=always", img, raw)
			vol := extractPartTB(t, raw, partOffsets(t, raw)[0], ntfsMiB)
			if b, err := exec.Command("ntfscat", vol, "/Program Files/Bulk/f0999.txt").Output(); err != nil || len(b) != 1099 {
				t.Errorf("ntfscat f0999.txt: %d bytes, %v", len(b), err)
			}
		} else if rec.Unknown == "" {
			t.Errorf("with the summary off the record says %+v", rec)
		}
		t.Logf("bulk commit, summary %s: unmount %.2fs, summary %.2fs (load %s)", mode, took, rec.Seconds, loadAvg())
	}
	t.Logf("bulk commit (256 MiB + 1,000 files): unmount median %.2fs with the summary, %.2fs without; the summary itself %.2fs",
		median(files["on"]), median(files["off"]), median(files["summary"]))

	// the summary's byte comparison: the 256 MiB file written again with
	// one byte changed (compared up to the change), and with the same
	// bytes (compared whole, and not listed: only its mtime moved)
	withBig := saveCopy(t, img, "withbig.img")
	for _, variant := range []string{"one byte changed", "same bytes"} {
		for i := 0; i < 2*pairs; i++ {
			mode := []string{"on", "off"}[i%2]
			run(t, "cp", "--sparse=always", withBig, img)
			os.RemoveAll(img + ".offvm-history")
			os.Remove(img + ".offvm-undo")
			env := []string{}
			if mode == "off" {
				env = append(env, "OFFVM_HISTORY_BUDGET=0")
			}
			mnt := mountLibEnv(t, lib, env)
			content := big
			if variant == "one byte changed" {
				content = append([]byte(nil), big...)
				content[len(content)/2] ^= 0xff
			}
			must(t, os.WriteFile(filepath.Join(mnt, "big.img", "p1", "Program Files", "Bulk", "big.bin"), content, 0o644))
			start := time.Now()
			mustOffvm(t, "unmount", mnt)
			took := time.Since(start).Seconds()
			rec := lastRecord(t, img)
			if mode == "on" {
				listed := strings.Contains(mustOffvm(t, "diff", img), "~ p1:/Program Files/Bulk/big.bin (256.0 MiB)")
				if rec.Guest == nil || listed != (variant == "one byte changed") {
					t.Errorf("record of the rewrite (%s): %+v, big.bin listed %v", variant, rec, listed)
				}
			}
			t.Logf("256 MiB file rewritten (%s), summary %s: unmount %.2fs, summary %.2fs (load %s)", variant, mode, took, rec.Seconds, loadAvg())
		}
	}

	regCost(t, img, base, ntfsMiB, pairs, "SOFTWARE")
	if system != "" {
		regCost(t, img, base, ntfsMiB, pairs, "SYSTEM")
	}
}

// regCost imports 1,000 values into a new key of hive (SOFTWARE or
// SYSTEM), with the summary on and off, and checks the record against
// hivexget.
func regCost(t *testing.T, img, base string, ntfsMiB, pairs int, hive string) {
	var reg strings.Builder
	fmt.Fprintf(&reg, "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\%s\\Bulk]\r\n", hive)
	for k := 0; k < 1000; k++ {
		fmt.Fprintf(&reg, "\"v%04d\"=dword:%08x\r\n", k, k)
	}
	regFile := filepath.Join(t.TempDir(), "bulk.reg")
	must(t, os.WriteFile(regFile, []byte(reg.String()), 0o644))
	vals := map[string][]float64{}
	for i := 0; i < 2*(pairs+1); i++ {
		mode := []string{"on", "off"}[i%2]
		run(t, "cp", "--sparse=always", base, img)
		os.RemoveAll(img + ".offvm-history")
		os.Remove(img + ".offvm-undo")
		cmd := exec.Command(offvm, "reg", "import", img, regFile)
		if mode == "off" {
			cmd.Env = append(os.Environ(), "OFFVM_HISTORY_BUDGET=0")
		}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("reg import: %v\n%s", err, out)
		}
		took := time.Since(start).Seconds()
		vals[mode] = append(vals[mode], took)
		rec := lastRecord(t, img)
		if mode == "on" {
			vals["summary"] = append(vals["summary"], rec.Seconds)
			if rec.Guest == nil || rec.Guest.Values != 1001 {
				t.Fatalf("record of the 1,000-value import: %+v", rec)
			}
			d := mustOffvm(t, "diff", img)
			raw := filepath.Join(t.TempDir(), "a.raw")
			run(t, "cp", "--sparse=always", img, raw)
			vol := extractPartTB(t, raw, partOffsets(t, raw)[0], ntfsMiB)
			hf := filepath.Join(t.TempDir(), hive)
			b, err := exec.Command("ntfscat", vol, "/Windows/System32/config/"+hive).Output()
			must(t, err)
			must(t, os.WriteFile(hf, b, 0o644))
			line := `+ HKLM\` + hive + `\Bulk\v0999: 999`
			if got := strings.TrimSpace(run(t, "hivexget", hf, `Bulk`, "v0999")); got != "999" || !strings.Contains(d, line) {
				t.Errorf("hivexget v0999 = %q; diff has %q: %v", got, line, strings.Contains(d, line))
			}
		}
		t.Logf("1,000-value reg import into %s, summary %s: %.2fs, summary %.2fs (load %s)", hive, mode, took, rec.Seconds, loadAvg())
	}
	t.Logf("1,000-value reg import into %s: median %.2fs with the summary, %.2fs without; the summary itself %.2fs",
		hive, median(vals["on"]), median(vals["off"]), median(vals["summary"]))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// mountLibEnv is mountLib with extra environment for the daemon.
func mountLibEnv(t *testing.T, lib string, env []string) string {
	t.Helper()
	mnt := t.TempDir()
	cmd := exec.Command(offvm, "mount", lib, mnt)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("offvm mount: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			runOffvm(t, "unmount", "--discard", mnt)
		}
	})
	return mnt
}

func haveFile(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
