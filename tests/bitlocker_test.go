package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/bitlocker/bltest"
	"github.com/offvm/offvm/internal/testutil"
)

// dislockerDecrypt runs Debian's dislocker-file on a BitLocker volume and
// returns the path of the decrypted volume.
func dislockerDecrypt(t *testing.T, vol string, s bltest.Sample) string {
	t.Helper()
	testutil.RequireTool(t, "dislocker-file", "dislocker")
	out := filepath.Join(t.TempDir(), "dislocker-file")
	args := append(append([]string{"-q", "-r", "-V", vol}, s.Dislocker...), "--", out)
	if b, err := exec.Command("dislocker-file", args...).CombinedOutput(); err != nil {
		t.Fatalf("dislocker-file %v: %v\n%s", args, err, b)
	}
	return out
}

// keysFile writes a secrets file of mode 600.
func keysFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	must(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return p
}

type blPartition struct {
	Number     int     `json:"number"`
	Filesystem *string `json:"filesystem"`
	Writable   bool    `json:"writable"`
	Locked     bool    `json:"locked"`
	Error      *string `json:"error"`
	Encryption *struct {
		Locked       bool     `json:"locked"`
		GUID         string   `json:"guid"`
		Description  string   `json:"description"`
		Protectors   []string `json:"protectors"`
		UnlockedWith string   `json:"unlocked_with"`
		Method       string   `json:"method"`
	} `json:"encryption"`
}

type blInfo struct {
	Partitions []blPartition `json:"partitions"`
	Problems   []string      `json:"problems"`
}

func parseBLInfo(t *testing.T, js string) blInfo {
	t.Helper()
	var inf blInfo
	if err := json.Unmarshal([]byte(js), &inf); err != nil {
		t.Fatalf("info json: %v\n%s", err, js)
	}
	return inf
}

// bitlockerDisk builds a GPT disk whose p1 is an empty Linux partition
// and p2 a full BitLocker volume (made from a Windows sample, holding an
// mkntfs volume with seed), converted to qcow2. It returns the image, the
// volume file and p2's offset.
func bitlockerDisk(t *testing.T, lib string, s bltest.Sample, seed string) (img, vol string, off int64) {
	ntfs := makeNTFS(t, bltest.MaxFS>>20, "BLTEST", func(dir string) { run(t, "cp", "-r", seed+"/.", dir) })
	vol = filepath.Join(t.TempDir(), "bitlocker.vol")
	size := bltest.Build(t, s, ntfs, vol)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	sparseFile(t, raw, 6*mib+size)
	script := fmt.Sprintf("label: gpt\nsize=4MiB, type=L\nsize=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n", size/512)
	if out, err := sfdisk(raw, script).CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	off = partOffsets(t, raw)[1]
	placeImage(t, raw, vol, off)
	img = filepath.Join(lib, "win.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	return img, vol, off
}

// TestBitLockerThroughMount: a BitLocker partition is locked without a
// secret, refused with a wrong one, and with the right one (selected by a
// glob on its description) shows its NTFS read-write; raw/p2 is the
// volume as dislocker decrypts it. Changes committed at unmount are read
// back with dislocker and ntfs-3g, ntfsresize finds the NTFS consistent,
// and the BitLocker metadata is byte-identical.
func TestBitLockerThroughMount(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "dislocker-file", "dislocker")
	s := bltest.Samples["aes-xts_128"]
	seed := t.TempDir()
	writeFile(t, filepath.Join(seed, "Windows", "win.ini"), 3000)
	writeFile(t, filepath.Join(seed, "Users", "alice", "notes.txt"), 70000)
	lib := t.TempDir()
	img, vol, off := bitlockerDisk(t, lib, s, seed)

	// the helper's volume is real: dislocker and ntfs-3g read the seed
	dec := dislockerDecrypt(t, vol, s)
	compareTrees(t, seed, ntfs3gMount(t, dec, 0), "System Volume Information")

	// locked: no keys
	inf := parseBLInfo(t, mustOffvm(t, "inspect", "--json", img))
	p := inf.Partitions[1]
	if p.Filesystem == nil || *p.Filesystem != "bitlocker" || !p.Locked || p.Encryption == nil ||
		strings.Join(p.Encryption.Protectors, ",") != "password" || p.Encryption.Description != "DESKTOP-QNI1MMF TestVolume 10/8/2021" {
		t.Fatalf("locked partition shown as %+v", p)
	}
	if out := mustOffvm(t, "ls", lib); !strings.Contains(out, "p2 bitlocker") || !strings.Contains(out, "(locked)") {
		t.Errorf("ls does not show the volume locked:\n%s", out)
	}
	// a wrong secret is named, and the image stays usable
	wrong := keysFile(t, "password:not-the-password", "111111-111111-111111-111111-111111-111111-111111-111111")
	inf = parseBLInfo(t, mustOffvm(t, "inspect", "--json", "--keys", wrong, img))
	if msg := strings.Join(inf.Problems, "\n"); !strings.Contains(msg, "no secret in "+wrong+" unlocks BitLocker volume {"+inf.Partitions[1].Encryption.GUID+"}") {
		t.Errorf("wrong secret: problems %q", msg)
	}
	if strings.Contains(mustOffvm(t, "inspect", "--json", "--keys", wrong, img), "not-the-password") {
		t.Errorf("inspect shows a secret")
	}
	// a keys file others may read is refused
	loose := keysFile(t, s.Secret)
	must(t, os.Chmod(loose, 0o644))
	if r := runOffvm(t, "inspect", "--keys", loose, img); r.code != 1 || !strings.Contains(r.err, "chmod 600") {
		t.Errorf("a mode 644 keys file: exit %d, %q", r.code, r.err)
	}

	before := readRange(t, vol, 0, 512)
	good := keysFile(t, "DESKTOP-* "+s.Secret)
	mnt := mountLib(t, lib, "--keys", good)
	dir := filepath.Join(mnt, "win.qcow2")
	if got := strings.Join(listNames(t, dir), ","); got != "disk,info.json,p2,raw" {
		t.Errorf("image lists %q", got)
	}
	if got := strings.Join(listNames(t, filepath.Join(dir, "raw")), ","); got != "p1,p2" {
		t.Errorf("raw/ lists %q", got)
	}
	compareTrees(t, seed, filepath.Join(dir, "p2"), "System Volume Information")
	rawP2, err := os.ReadFile(filepath.Join(dir, "raw", "p2"))
	must(t, err)
	want, err := os.ReadFile(dec)
	must(t, err)
	if !bytes.Equal(rawP2, want) {
		t.Errorf("raw/p2 (%d bytes) differs from dislocker's decryption (%d bytes)", len(rawP2), len(want))
	}
	if err := os.WriteFile(filepath.Join(dir, "raw", "p2"), []byte("x"), 0o644); err == nil {
		t.Errorf("raw/p2 accepted a write")
	}
	js, err := os.ReadFile(filepath.Join(dir, "info.json"))
	must(t, err)
	p = parseBLInfo(t, string(js)).Partitions[1]
	if p.Locked || p.Encryption == nil || p.Encryption.Locked || p.Encryption.UnlockedWith != "password" ||
		p.Encryption.Method != "AES-XTS 128" || !p.Writable || p.Filesystem == nil || *p.Filesystem != "ntfs" {
		t.Errorf("unlocked partition in info.json: %s", js)
	}

	// write through the mount, and the same on the host for comparison
	exp := t.TempDir()
	run(t, "cp", "-r", seed+"/.", exp)
	dll := bytes.Repeat([]byte("agent 1.2.4 "), 25000)
	for _, d := range []string{filepath.Join(dir, "p2"), exp} {
		must(t, os.MkdirAll(filepath.Join(d, "Program Files", "Contoso"), 0o755))
		must(t, os.WriteFile(filepath.Join(d, "Program Files", "Contoso", "agent.dll"), dll, 0o644))
		must(t, os.WriteFile(filepath.Join(d, "Windows", "win.ini"), []byte("[offvm]\nchanged=1\n"), 0o644))
		must(t, os.Remove(filepath.Join(d, "Users", "alice", "notes.txt")))
	}
	mustOffvm(t, "unmount", mnt)

	if out, err := exec.Command("qemu-img", "check", img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	flat := filepath.Join(t.TempDir(), "flat.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, flat)
	after := filepath.Join(t.TempDir(), "after.vol")
	size := int64(len(want))
	run(t, "dd", "if="+flat, "of="+after, "bs=512", "skip="+itoa(off/512), "count="+itoa(size/512), "status=none")
	if !bytes.Equal(readRange(t, after, 0, 512), before) {
		t.Errorf("the BitLocker boot sector changed")
	}
	for _, r := range [][2]int64{{35586048, 65536}, {43278336, 65536}, {50966528, 65536}} {
		if !bytes.Equal(readRange(t, after, r[0], r[1]), readRange(t, vol, r[0], r[1])) {
			t.Errorf("BitLocker metadata at %d changed", r[0])
		}
	}
	dec2 := dislockerDecrypt(t, after, s)
	if out, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", dec2).CombinedOutput(); err != nil || !strings.Contains(string(out), "Space in use") {
		t.Fatalf("ntfsresize --info on dislocker's decryption: %v\n%s", err, out)
	}
	compareTrees(t, exp, ntfs3gMount(t, dec2, 0), "System Volume Information")
}

func readRange(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("%s at %d: %v", path, off, err)
	}
	return b
}

// TestBitLockerCrashDuringCommit kills the daemon (SIGKILL) inside the
// commit of writes to an unlocked BitLocker volume: after the next offvm
// command the image is either byte-identical to before or holds every
// change, which dislocker, ntfs-3g and ntfsresize then read back.
func TestBitLockerCrashDuringCommit(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "dislocker-file", "dislocker")
	s := bltest.Samples["aes_128_diffuser"]
	for _, c := range []struct{ point, want string }{{"journal-partial", "old"}, {"mid-apply", "old"}, {"before-undo", "new"}} {
		t.Run(c.point, func(t *testing.T) {
			seed := t.TempDir()
			writeFile(t, filepath.Join(seed, "old.txt"), 5000)
			lib := t.TempDir()
			img, vol, off := bitlockerDisk(t, lib, s, seed)
			orig := sumFile(t, img)
			good := keysFile(t, s.Secret)
			mnt := t.TempDir()
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd := exec.Command(offvm, "mount", "--keys", good, "--pid-file", pidFile, lib, mnt)
			cmd.Env = append(os.Environ(), "OFFVM_FAULT="+c.point)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mount: %v\n%s", err, out)
			}
			defer cleanupMount(mnt)
			data := bytes.Repeat([]byte("committed through BitLocker\n"), 4000)
			must(t, os.WriteFile(filepath.Join(mnt, "win.qcow2", "p2", "new.txt"), data, 0o644))
			if r := runOffvm(t, "unmount", mnt); r.code == 0 {
				t.Fatalf("unmount succeeded although the daemon was killed at %s", c.point)
			}
			cleanupMount(mnt)
			b, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == 0 || !waitGone(pid, 10*time.Second) {
				t.Fatalf("daemon %d still alive after its fault point", pid)
			}
			if r := runOffvm(t, "check", "--keys", good, img); r.code != 0 {
				t.Fatalf("offvm check: exit %d %s %s", r.code, r.out, r.err)
			}
			if out, err := exec.Command("qemu-img", "check", img).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img check: %v\n%s", err, out)
			}
			state := "new"
			if sumFile(t, img) == orig {
				state = "old"
			}
			if state != c.want {
				t.Fatalf("after a crash at %s the image is %s, want %s", c.point, state, c.want)
			}
			if state == "old" {
				return
			}
			flat := filepath.Join(t.TempDir(), "flat.raw")
			run(t, "qemu-img", "convert", "-O", "raw", img, flat)
			st, err := os.Stat(vol)
			must(t, err)
			after := filepath.Join(t.TempDir(), "after.vol")
			run(t, "dd", "if="+flat, "of="+after, "bs=512", "skip="+itoa(off/512), "count="+itoa(st.Size()/512), "status=none")
			dec := dislockerDecrypt(t, after, s)
			if out, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", dec).CombinedOutput(); err != nil || !strings.Contains(string(out), "Space in use") {
				t.Fatalf("ntfsresize --info: %v\n%s", err, out)
			}
			got, err := os.ReadFile(filepath.Join(ntfs3gMount(t, dec, 0), "new.txt"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("new.txt through dislocker and ntfs-3g: %d bytes, %v", len(got), err)
			}
		})
	}
}
