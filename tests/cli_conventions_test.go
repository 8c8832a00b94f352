package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/daemon"
)

// TestUsageMistakes: every wrong invocation exits 2 with one line on
// stderr that names the mistake, as Linux tools do.
func TestUsageMistakes(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{nil, "no command"},
		{[]string{"foo"}, `unknown command "foo"`},
		{[]string{"patch"}, "patch needs a subcommand: apply, status"},
		{[]string{"patch", "frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"reg"}, "reg needs a subcommand: export, import"},
		{[]string{"reg", "export"}, "usage: offvm reg export IMAGE"},
		{[]string{"reg", "import", "x"}, "usage: offvm reg import IMAGE FILE.reg"},
		{[]string{"patch", "apply", "b"}, "usage: offvm patch apply BUNDLE TARGET"},
		{[]string{"ls", "--shard", "4/4", "lib"}, "--shard 4/4"},
		{[]string{"ls", "--shard", "x", "lib"}, "--shard takes I/N"},
		{[]string{"ls", "--jobs", "-1", "lib"}, "--jobs"},
		{[]string{"ls", "--no-such-flag", "lib"}, "no-such-flag"},
		{[]string{"report", "--max-age", "-3", "lib"}, "--max-age"},
	} {
		r := runOffvm(t, c.args...)
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if r.code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "offvm: ") || !strings.Contains(lines[0], c.says) {
			t.Errorf("offvm %s: exit %d, stderr %q; want exit 2 and one line saying %q", strings.Join(c.args, " "), r.code, r.err, c.says)
		}
	}
}

// TestNotAnImage: a file that holds no disk is "not a disk image" (exit
// 1) for inspect and check, never a writable raw disk that checks ok.
func TestNotAnImage(t *testing.T) {
	text := filepath.Join(t.TempDir(), "passwd")
	run(t, "cp", "/etc/passwd", text)
	for _, args := range [][]string{{"inspect", text}, {"inspect", "--json", text}, {"check", text}, {"check", "--json", text}} {
		r := runOffvm(t, args...)
		if r.code != 1 || !strings.Contains(r.out+r.err, text+": not a disk image") {
			t.Errorf("offvm %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
	var chk []struct {
		OK       bool
		Problems []string
	}
	must(t, json.Unmarshal([]byte(runOffvm(t, "check", "--json", text).out), &chk))
	if len(chk) != 1 || chk[0].OK || len(chk[0].Problems) != 1 {
		t.Errorf("check --json of a text file: %+v", chk)
	}
	if _, err := os.Stat(text + ".offvm-lock"); err == nil {
		t.Errorf("check left a lock file beside a text file")
	}
}

// brokenLibrary holds a good image, a 5 MB garbage .vhdx, a text file
// named .img, a VHD whose end footer has a wrong checksum (made by
// qemu-img, one byte changed), and a text file that is not named like an
// image (not listed).
func brokenLibrary(t *testing.T) (lib, good, garbage, text, vhd string) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "hello.txt"), 100)
	lib = t.TempDir()
	good, _ = fatDisk(t, lib, "good.img", src)
	garbage = filepath.Join(lib, "garbage.vhdx")
	junk := make([]byte, 5<<20)
	for i := range junk {
		junk[i] = byte(i*7 + i>>9)
	}
	must(t, os.WriteFile(garbage, junk, 0o644))
	text = filepath.Join(lib, "notes.img")
	must(t, os.WriteFile(text, []byte("this is not a disk\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(lib, "README.txt"), []byte("not listed\n"), 0o644))
	vhd = filepath.Join(lib, "footer.vhd")
	run(t, "qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic", good, vhd)
	b, err := os.ReadFile(vhd)
	must(t, err)
	b[len(b)-512+8] ^= 0xff // the end footer's features field: its checksum no longer matches
	must(t, os.WriteFile(vhd, b, 0o644))
	return
}

// TestBrokenImagesListed: files named like images that are not appear in
// ls --json, report --json and the mounted tree with their cause; a VHD
// read through its footer copy says so in problems.
func TestBrokenImagesListed(t *testing.T) {
	lib, good, garbage, text, vhd := brokenLibrary(t)
	var infos []struct {
		Path     string
		Error    *string
		Problems []string
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", lib)), &infos))
	byPath := map[string]int{}
	for i, inf := range infos {
		byPath[inf.Path] = i
	}
	if len(infos) != 4 {
		t.Fatalf("ls --json lists %d images, want 4: %+v", len(infos), infos)
	}
	for _, p := range []string{garbage, text} {
		inf := infos[byPath[p]]
		if inf.Path != p || inf.Error == nil || !strings.Contains(*inf.Error, "not a disk image") {
			t.Errorf("%s in ls --json: %+v", p, inf)
		}
	}
	if inf := infos[byPath[good]]; inf.Error != nil {
		t.Errorf("good image: %+v", inf)
	}
	fv := infos[byPath[vhd]]
	if fv.Error != nil || len(fv.Problems) == 0 || !strings.Contains(strings.Join(fv.Problems, " "), "footer") {
		t.Errorf("VHD with a bad footer checksum: %+v", fv)
	}
	if out := mustOffvm(t, "ls", lib); !strings.Contains(out, "garbage.vhdx") || !strings.Contains(out, "notes.img") || strings.Contains(out, "README") {
		t.Errorf("ls:\n%s", out)
	}

	var rep struct {
		Rows []struct {
			Path, Error string
			Issues      []string
		} `json:"images"`
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "report", "--json", lib)), &rep))
	cannot := map[string]string{}
	for _, r := range rep.Rows {
		if strings.Join(r.Issues, ",") == "cannot be opened" {
			cannot[r.Path] = r.Error
		}
	}
	if len(cannot) != 2 || !strings.Contains(cannot[garbage], "not a disk image") || !strings.Contains(cannot[text], "not a disk image") {
		t.Errorf("report's cannot be opened: %v", cannot)
	}

	mnt := mountLib(t, lib, "--ro")
	names := listNames(t, mnt)
	if strings.Join(names, ",") != "footer.vhd,garbage.vhdx,good.img,notes.img" {
		t.Errorf("tree: %v", names)
	}
	if n := listNames(t, filepath.Join(mnt, "garbage.vhdx")); strings.Join(n, ",") != "info.json" {
		t.Errorf("garbage.vhdx/ holds %v, want only info.json", n)
	}
	info := infoOf(t, filepath.Join(mnt, "garbage.vhdx"))
	if e, _ := info["error"].(string); !strings.Contains(e, garbage+": not a disk image") {
		t.Errorf("garbage.vhdx/info.json: %v", info)
	}
	mustOffvm(t, "unmount", mnt)
}

// TestDaemonLogRemoved: a daemon that exits cleanly leaves no log behind.
func TestDaemonLogRemoved(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), 10)
	lib := t.TempDir()
	fatDisk(t, lib, "vm.img", src)
	mnt := mountLib(t, lib)
	log := daemon.LogPath(mnt)
	if _, err := os.Stat(log); err != nil {
		t.Fatalf("no log while mounted: %v", err)
	}
	mustOffvm(t, "unmount", mnt)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(log); os.IsNotExist(err) {
			return
		}
		sleepMs(20)
	}
	t.Errorf("%s is left after a clean unmount", log)
}
