package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// logEntry is what offvm log --json says of one commit.
type logEntry struct {
	ID     int `json:"id"`
	MadeBy struct {
		Command string `json:"command"`
		Bundle  string `json:"bundle"`
	} `json:"made_by"`
	Bytes int64 `json:"bytes"`
	Files []struct {
		Path  string `json:"path"`
		Bytes int64  `json:"bytes"`
	} `json:"files"`
	State string `json:"state"`
	Guest *struct {
		Files, Values int
	} `json:"guest"`
}

func offvmLog(t *testing.T, img string) []logEntry {
	t.Helper()
	var cs []logEntry
	if err := json.Unmarshal([]byte(mustOffvm(t, "log", "--json", img)), &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// saveCopy copies an image file aside (the state to come back to).
func saveCopy(t *testing.T, img, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	run(t, "cp", "--sparse=always", img, p)
	return p
}

// copyWithHistory copies the image with its undo record and history into
// a new directory, mtimes kept (the undo record checks them).
func copyWithHistory(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{img, img + ".offvm-undo", img + ".offvm-history"} {
		if _, err := os.Stat(p); err == nil {
			run(t, "cp", "-a", p, dir)
		}
	}
	return filepath.Join(dir, filepath.Base(img))
}

// qemuSame fails unless qemu-img compare finds the two images' guest
// contents identical, and qemu-img check finds a is sound.
func qemuSame(t *testing.T, a, b string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", "compare", a, b).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare %s %s: %v\n%s", a, b, err, out)
	}
	if out, err := exec.Command("qemu-img", "check", a).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check %s: %v\n%s", a, err, out)
	}
}

// checkWindowsGuest runs ntfs-3g's and dosfstools' checkers on the
// patch image's NTFS and FAT and reads Contoso's Version with hivex.
func checkWindowsGuest(t *testing.T, img string) (version string) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "g.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, raw)
	if o, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", ntfsVolume(t, raw)).CombinedOutput(); err != nil {
		t.Errorf("ntfsresize --info: %v\n%s", err, o)
	}
	run(t, "fsck.fat", "-n", extractPart(t, raw, partOffsets(t, raw)[0], 40))
	software := ntfsCat(t, raw, 3, "/Windows/System32/config/SOFTWARE")
	out, _ := exec.Command("hivexget", software, `Contoso\Agent`, "Version").Output()
	return strings.TrimSpace(string(out))
}

// TestHistoryRollbackTo: three commits (reg import, patch apply, reg
// import) into a qcow2 Windows image; log and diff name them; rollback
// --to 2 and then --to 1 give back, by qemu-img compare and sha256, the
// copies saved before those commits, which ntfs-3g, fsck.fat and hivex
// accept; a kill -9 inside rollback --to is finished by the next command.
func TestHistoryRollbackTo(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "w.raw")
	makePatchImage(t, raw)
	img := filepath.Join(t.TempDir(), "web01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	reg := func(name, text string) string {
		p := filepath.Join(t.TempDir(), name)
		must(t, os.WriteFile(p, []byte("Windows Registry Editor Version 5.00\r\n\r\n"+text), 0o644))
		return p
	}
	state0 := saveCopy(t, img, "s0.qcow2")
	mustOffvm(t, "reg", "import", img, reg("a.reg", "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent]\r\n\"Version\"=\"1.2.3\"\r\n"))
	state1 := saveCopy(t, img, "s1.qcow2")
	mustOffvm(t, "patch", "apply", makeBundle(t, "Windows Server 2019*"), img)
	state2 := saveCopy(t, img, "s2.qcow2")
	mustOffvm(t, "reg", "import", img, reg("b.reg", "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent]\r\n\"Version\"=\"9.9\"\r\n"))
	if v := checkWindowsGuest(t, img); v != "9.9" {
		t.Fatalf("after three commits Version = %q", v)
	}

	cs := offvmLog(t, img)
	t.Logf("offvm log:\n%s", mustOffvm(t, "log", img))
	want := []string{"reg import", "patch apply", "reg import"}
	if len(cs) != 3 {
		t.Fatalf("log has %d commits, want 3", len(cs))
	}
	for i, c := range cs {
		if c.ID != 3-i || c.MadeBy.Command != want[2-i] || c.State != "undoable" || c.Bytes == 0 {
			t.Errorf("log entry %d: %+v", i, c)
		}
	}
	if cs[1].MadeBy.Bundle != "contoso-agent-1.2.4" {
		t.Errorf("patch commit's bundle is %q", cs[1].MadeBy.Bundle)
	}
	d2 := mustOffvm(t, "diff", img, "2")
	t.Logf("offvm diff IMAGE 2:\n%s", d2)
	for _, want := range []string{
		"commit 2", "~ web01.qcow2:",
		"~ p3:/Program Files/Contoso/agent.dll (8.2 KiB)",
		"+ p3:/Program Files/Contoso/agent.conf (11 B)",
		"- p3:/Program Files/Contoso/old.dll (8 B)",
		"+ p3:/Program Files/Contoso/plugins/net/http.dll (11 B)",
		"+ p1:/EFI/Contoso/agent.efi (9 B)",
		`~ HKLM\SOFTWARE\Contoso\Agent\Version: 1.2.3 -> 1.2.4`,
		`+ HKLM\SOFTWARE\Contoso\Agent\Port: 8080`,
		`- HKLM\SYSTEM\ControlSet001\Services\Spooler\Blob`,
		`+ HKLM\SOFTWARE\offvm\Patches\contoso-agent-1.2.4\Title: Contoso Agent 1.2.4`,
	} {
		if !strings.Contains(d2, want) {
			t.Errorf("diff of commit 2 lacks %q", want)
		}
	}
	if strings.Contains(d2, "readme.txt") || strings.Contains(d2, `Spooler\Start`) {
		t.Errorf("diff of commit 2 lists what the bundle left as it was:\n%s", d2)
	}
	crossCheckDiff(t, d2, state1, state2, 8)
	// the counts of the diff are kept for the log; --changes counts the rest
	if g := offvmLog(t, img)[1].Guest; g == nil || g.Files != strings.Count(d2, "\n+ p")+strings.Count(d2, "\n~ p")+strings.Count(d2, "\n- p") {
		t.Errorf("log after diff 2: guest %+v", g)
	}
	var counted []logEntry
	must(t, json.Unmarshal([]byte(mustOffvm(t, "log", "--changes", "--json", img)), &counted))
	if g := counted[0].Guest; g == nil || g.Values != 1 {
		t.Errorf("log --changes: commit 3 changed %+v in the guest, want 1 value", g)
	}
	if g := counted[2].Guest; g == nil || g.Values != 3 { // keys Contoso and Contoso\Agent, value Version
		t.Errorf("log --changes: commit 1 changed %+v in the guest, want 2 keys and a value", g)
	}
	if d1 := mustOffvm(t, "diff", img, "1"); !strings.Contains(d1, `+ HKLM\SOFTWARE\Contoso\Agent (key)`) || !strings.Contains(d1, `+ HKLM\SOFTWARE\Contoso\Agent\Version: 1.2.3`) {
		t.Errorf("diff of commit 1:\n%s", d1)
	}
	t.Logf("offvm log:\n%s", mustOffvm(t, "log", img))
	if d3 := mustOffvm(t, "diff", img, "3"); !strings.Contains(d3, `~ HKLM\SOFTWARE\Contoso\Agent\Version: 1.2.4 -> 9.9`) || strings.Contains(d3, "agent.dll") {
		t.Errorf("diff of commit 3:\n%s", d3)
	}
	// two images: the untouched copy and the patched one
	dd := mustOffvm(t, "diff", state0, img)
	for _, want := range []string{"~ p3:/Program Files/Contoso/agent.dll", `+ HKLM\SOFTWARE\Contoso\Agent\Version: 9.9`, `- HKLM\SYSTEM\ControlSet001\Services\Spooler\Blob`} {
		if !strings.Contains(dd, want) {
			t.Errorf("diff of two images lacks %q:\n%s", want, dd)
		}
	}
	if same := mustOffvm(t, "diff", state0, state0); !strings.Contains(same, "0 files, 0 registry keys and values differ") {
		t.Errorf("an image diffed with itself:\n%s", same)
	}

	// a kill -9 between the undo records of rollback --to 1; the next
	// command (check) finishes it
	crashed := copyWithHistory(t, img)
	cmd := exec.Command(offvm, "rollback", "--to", "1", crashed)
	cmd.Env = append(os.Environ(), "OFFVM_FAULT=rollback-to-between")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("rollback --to with the fault point: %v", err)
	}
	// half rolled back: a read-only open refuses rather than show it
	if r := runOffvm(t, "inspect", "--json", crashed); r.code != 1 || !strings.Contains(r.out, "interrupted commit awaits recovery") {
		t.Errorf("inspect of a half rolled back image: exit %d, %q %q", r.code, r.out, r.err)
	}
	mustOffvm(t, "check", crashed)
	qemuSame(t, crashed, state0)

	if out := mustOffvm(t, "rollback", "--to", "2", img); !strings.Contains(out, "undid 3, 2") {
		t.Errorf("rollback --to 2 printed %q", out)
	}
	qemuSame(t, img, state1)
	if sumFile(t, img) != sumFile(t, state1) {
		t.Error("after rollback --to 2 the file differs from the copy saved before commit 2")
	}
	if v := checkWindowsGuest(t, img); v != "1.2.3" {
		t.Errorf("after rollback --to 2 Version = %q", v)
	}
	_ = state2
	mustOffvm(t, "rollback", "--to", "1", img)
	qemuSame(t, img, state0)
	if sumFile(t, img) != sumFile(t, state0) {
		t.Error("after rollback --to 1 the file differs from the first copy")
	}
	for _, c := range offvmLog(t, img) {
		if c.State != "rolled back" {
			t.Errorf("commit %d is %q after rolling all back", c.ID, c.State)
		}
	}
}

// TestHistoryMountRefusals: two commits through a mounted ext4, recorded
// as unmounts; a change outside offvm makes rollback --to refuse and
// write nothing; --keep drops the oldest record; a kill -9 half way
// through restoring is finished by check, and e2fsck accepts the result.
func TestHistoryMountRefusals(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc", "motd"), 100)
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 32, typ: "L", fs: makeExt4(t, root, 32, "root")}})
	lib := t.TempDir()
	img := filepath.Join(lib, "db01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	state0 := saveCopy(t, img, "s0.qcow2")
	for i, body := range []string{"first\n", "second\n"} {
		mnt := mountLib(t, lib)
		must(t, os.WriteFile(filepath.Join(mnt, "db01.qcow2", "p1", "etc", "motd"), []byte(body), 0o644))
		must(t, os.WriteFile(filepath.Join(mnt, "db01.qcow2", "p1", "etc", "n"+body[:1]), make([]byte, (i+1)<<20), 0o644))
		mustOffvm(t, "unmount", mnt)
	}
	cs := offvmLog(t, img)
	if len(cs) != 2 || cs[0].MadeBy.Command != "unmount" || cs[1].MadeBy.Command != "unmount" {
		t.Fatalf("log after two mounts: %+v", cs)
	}
	if _, err := os.ReadDir(filepath.Join(lib)); err != nil {
		t.Fatal(err)
	}
	if ls := mustOffvm(t, "ls", lib); strings.Contains(ls, "offvm-history") {
		t.Errorf("ls shows the history:\n%s", ls)
	}

	// crash half way through the first record, then check finishes it
	crashed := copyWithHistory(t, img)
	cmd := exec.Command(offvm, "rollback", "--to", "1", crashed)
	cmd.Env = append(os.Environ(), "OFFVM_FAULT=rollback-to-record")
	if err := cmd.Run(); err == nil {
		t.Fatal("rollback --to with the fault point exited 0")
	}
	mustOffvm(t, "check", crashed)
	qemuSame(t, crashed, state0)
	back := filepath.Join(t.TempDir(), "b.raw")
	run(t, "qemu-img", "convert", "-O", "raw", crashed, back)
	part := extractPart(t, back, partOffsets(t, back)[0], 32)
	if o, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the recovered rollback: %v\n%s", err, o)
	}

	// --keep 1 drops commit 1's record: rollback --to 1 refuses by name
	kept := copyWithHistory(t, img)
	mustOffvm(t, "log", "--keep", "1", kept)
	before := sumFile(t, kept)
	if r := runOffvm(t, "rollback", "--to", "1", kept); r.code != 1 || !strings.Contains(r.err, "commit 1") {
		t.Errorf("rollback past --keep: exit %d, %q", r.code, r.err)
	}
	if sumFile(t, kept) != before {
		t.Error("a refused rollback changed the image")
	}

	// a write outside offvm (qemu-io) makes it refuse and write nothing
	run(t, "qemu-io", "-c", "write -P 0x55 1M 64k", img)
	before = sumFile(t, img)
	if r := runOffvm(t, "rollback", "--to", "1", img); r.code != 1 || !strings.Contains(r.err, "changed") {
		t.Errorf("rollback over a foreign change: exit %d, %q", r.code, r.err)
	}
	if sumFile(t, img) != before {
		t.Error("a refused rollback changed the image")
	}
}

// crossCheckDiff checks every file line of a diff of partition 3 against
// what ntfs-3g's ntfscat finds in the copies saved before and after, and
// every value line against hivexget: offvm's reader is not the judge.
func crossCheckDiff(t *testing.T, diff, before, after string, minChecked int) {
	t.Helper()
	toRaw := func(q string) string {
		r := filepath.Join(t.TempDir(), "v.raw")
		run(t, "qemu-img", "convert", "-O", "raw", q, r)
		return r
	}
	rb, ra := toRaw(before), toRaw(after)
	vb, va := ntfsVolume(t, rb), ntfsVolume(t, ra)
	hb, ha := ntfsCat(t, rb, 3, "/Windows/System32/config/SOFTWARE"), ntfsCat(t, ra, 3, "/Windows/System32/config/SOFTWARE")
	checked := 0
	for _, line := range strings.Split(diff, "\n") {
		op, rest, _ := strings.Cut(line, " ")
		if from, to, ok := strings.Cut(rest, " -> "); op == ">" && ok && strings.HasPrefix(from, "p3:") {
			// a rename: the same bytes and the same MFT record, under the
			// old name only before and the new name only after
			from, to = from[3:], strings.TrimPrefix(to, "p3:")
			old, errB := ntfsFile(t, vb, from)
			cur, errA := ntfsFile(t, va, to)
			_, gone := ntfsFile(t, va, from)
			_, born := ntfsFile(t, vb, to)
			if errB != nil || errA != nil || gone == nil || born == nil || string(old) != string(cur) {
				t.Errorf("diff says %q; ntfscat: old name before %v, new name after %v, old name after %v, new name before %v, same bytes %v",
					line, errB, errA, gone, born, string(old) == string(cur))
			} else if ib, ia := ntfsInode(t, vb, from), ntfsInode(t, va, to); ib != ia {
				t.Errorf("diff says %q; ntfsinfo: %s before, %s after", line, ib, ia)
			}
			checked++
			continue
		}
		if p, ok := strings.CutPrefix(rest, "p3:"); ok && !strings.HasSuffix(p, "(dir)") {
			p = p[:strings.LastIndex(p, " (")]
			old, errB := ntfsFile(t, vb, p)
			cur, errA := ntfsFile(t, va, p)
			ok := map[string]bool{"+": errB != nil && errA == nil, "-": errB == nil && errA != nil,
				"~": errB == nil && errA == nil && string(old) != string(cur)}[op]
			if !ok {
				t.Errorf("diff says %q, ntfscat before: %v, after: %v", line, errB, errA)
			}
			checked++
		}
		if p, ok := strings.CutPrefix(rest, `HKLM\SOFTWARE\Contoso\Agent\`); ok {
			name, _, _ := strings.Cut(p, ":")
			old, _ := exec.Command("hivexget", hb, `Contoso\Agent`, name).Output()
			cur, _ := exec.Command("hivexget", ha, `Contoso\Agent`, name).Output()
			if string(old) == string(cur) || !strings.Contains(line, strings.TrimSpace(string(cur))) {
				t.Errorf("diff says %q, hivexget before %q, after %q", line, old, cur)
			}
			checked++
		}
	}
	if checked < minChecked {
		t.Errorf("only %d diff lines cross-checked, want %d", checked, minChecked)
	}
}

// ntfsInode is the MFT record number ntfs-3g's ntfsinfo finds at path.
func ntfsInode(t *testing.T, vol, path string) string {
	t.Helper()
	out, err := exec.Command("ntfsinfo", "-F", path, vol).CombinedOutput()
	if err != nil {
		t.Fatalf("ntfsinfo -F %s: %v\n%s", path, err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(line, "Dumping Inode ") {
		t.Fatalf("ntfsinfo -F %s: %q", path, line)
	}
	return line
}

// TestHistoryMountCommit: one unmount commits files (created, changed,
// deleted, renamed on NTFS and on FAT) and a registry value through the
// mounted view. Right after the commit, with no diff asked, the log has
// its counts; diff lists the changes recorded at commit time, each
// checked against ntfs-3g (ntfscat, and ntfsinfo for the rename: one MFT
// record under the old name before and the new name after), mtools and
// hivexget on copies saved before and after. The library report shows
// the commit in JSON and HTML.
func TestHistoryMountCommit(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makePatchImage(t, img)
	before := saveCopy(t, img, "before.img")
	mnt := mountLib(t, lib)
	c3 := filepath.Join(mnt, "web01.img", "p3", "Program Files", "Contoso")
	must(t, os.WriteFile(filepath.Join(c3, "new.cfg"), make([]byte, 100), 0o644))
	must(t, os.WriteFile(filepath.Join(c3, "agent.dll"), []byte("agent 2.0"), 0o644))
	must(t, os.Remove(filepath.Join(c3, "old.dll")))
	must(t, os.Rename(filepath.Join(c3, "readme.txt"), filepath.Join(c3, "README.md")))
	boot := filepath.Join(mnt, "web01.img", "p1", "EFI", "Boot")
	must(t, os.Rename(filepath.Join(boot, "bootx64.efi"), filepath.Join(boot, "bootx64.bak")))
	spooler := filepath.Join(mnt, "web01.img", "registry", "HKLM", "SYSTEM", "ControlSet001", "Services", "Spooler")
	must(t, os.WriteFile(filepath.Join(spooler, "Start"), []byte("4\n"), 0o644))
	mustOffvm(t, "unmount", mnt)
	after := saveCopy(t, img, "after.img")

	var cs []struct {
		logEntry
		Unknown string `json:"guest_unknown"`
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "log", "--json", img)), &cs))
	if len(cs) != 1 || cs[0].MadeBy.Command != "unmount" || cs[0].Guest == nil || cs[0].Unknown != "" {
		t.Fatalf("log right after the commit: %+v", cs)
	}
	d := mustOffvm(t, "diff", img)
	t.Logf("offvm diff:\n%s", d)
	if strings.Contains(d, "computed now") {
		t.Error("diff computed the changes instead of reading the record")
	}
	for _, want := range []string{
		"> p3:/Program Files/Contoso/readme.txt -> p3:/Program Files/Contoso/README.md",
		"> p1:/EFI/Boot/bootx64.efi -> p1:/EFI/Boot/bootx64.bak",
		"+ p3:/Program Files/Contoso/new.cfg (100 B)",
		"~ p3:/Program Files/Contoso/agent.dll (9 B)",
		"- p3:/Program Files/Contoso/old.dll (8 B)",
		`~ HKLM\SYSTEM\ControlSet001\Services\Spooler\Start: 2 -> 4`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if strings.Contains(d, "- p3:/Program Files/Contoso/readme.txt") || strings.Contains(d, "+ p3:/Program Files/Contoso/README.md") {
		t.Error("the rename is listed as a delete and a create")
	}
	lines := strings.Count(d, "\n+ p") + strings.Count(d, "\n~ p") + strings.Count(d, "\n- p") + strings.Count(d, "\n> p")
	if cs[0].Guest.Files != lines {
		t.Errorf("log counts %d files, diff lists %d", cs[0].Guest.Files, lines)
	}
	crossCheckDiff(t, d, before, after, 6)
	// FAT: mtools sees the rename the diff says
	rb, ra := filepath.Join(t.TempDir(), "b.raw"), filepath.Join(t.TempDir(), "a.raw")
	run(t, "cp", before, rb)
	run(t, "cp", after, ra)
	fb, fa := extractPart(t, rb, partOffsets(t, rb)[0], 40), extractPart(t, ra, partOffsets(t, ra)[0], 40)
	if run(t, "mtype", "-i", fb, "::/EFI/Boot/bootx64.efi") != run(t, "mtype", "-i", fa, "::/EFI/Boot/bootx64.bak") {
		t.Error("mtools: the renamed FAT file's bytes differ")
	}
	if err := exec.Command("mtype", "-i", fa, "::/EFI/Boot/bootx64.efi").Run(); err == nil {
		t.Error("mtools: the old FAT name is still there")
	}
	run(t, "fsck.fat", "-n", fa)
	sb, sa := ntfsCat(t, before, 3, "/Windows/System32/config/SYSTEM"), ntfsCat(t, after, 3, "/Windows/System32/config/SYSTEM")
	if o, n := strings.TrimSpace(run(t, "hivexget", sb, `ControlSet001\Services\Spooler`, "Start")), strings.TrimSpace(run(t, "hivexget", sa, `ControlSet001\Services\Spooler`, "Start")); o != "2" || n != "4" {
		t.Errorf("hivexget Start before %q after %q, diff says 2 -> 4", o, n)
	}

	// the library report's last-commit column
	html := filepath.Join(t.TempDir(), "r.html")
	var rep struct {
		Images []struct {
			Path       string `json:"path"`
			LastCommit *struct {
				ID      int    `json:"id"`
				Command string `json:"command"`
			} `json:"last_commit"`
		} `json:"images"`
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "report", "--json", "--html", html, lib)), &rep))
	if len(rep.Images) != 1 || rep.Images[0].LastCommit == nil || rep.Images[0].LastCommit.ID != 1 || rep.Images[0].LastCommit.Command != "unmount" {
		t.Errorf("report --json: %+v", rep.Images)
	}
	page, err := os.ReadFile(html)
	must(t, err)
	if !strings.Contains(string(page), ">Last commit</th>") || !strings.Contains(string(page), "#1 unmount") {
		t.Error("the HTML report lacks the last-commit column")
	}
	if txt := mustOffvm(t, "report", lib); !strings.Contains(txt, "LAST COMMIT") || !strings.Contains(txt, "#1 unmount") {
		t.Errorf("report:\n%s", txt)
	}
}

// TestHistoryCrashCommit: kill -9 at each point of a reg import onto an
// image with a history (before its record is written, after, half
// applied, applied but not yet the undo record); the next command
// finishes the commit, hivexget reads the new value, and the history
// stays whole: two commits, the second with its record (or, killed
// before it was written, "changes unknown" and a diff computed from
// the undo record), and rollback --to 2 gives back the first state.
func TestHistoryCrashCommit(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "w.raw")
	makePatchImage(t, raw)
	img := filepath.Join(t.TempDir(), "web01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	reg := func(name, text string) string {
		p := filepath.Join(t.TempDir(), name)
		must(t, os.WriteFile(p, []byte("Windows Registry Editor Version 5.00\r\n\r\n"+text), 0o644))
		return p
	}
	mustOffvm(t, "reg", "import", img, reg("a.reg", "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent]\r\n\"Version\"=\"1.0\"\r\n"))
	state1 := saveCopy(t, img, "s1.qcow2")
	second := reg("b.reg", "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent]\r\n\"Version\"=\"2.0\"\r\n")
	for _, point := range []string{"history-guest", "journal-written", "mid-apply", "before-undo"} {
		t.Run(point, func(t *testing.T) {
			crashed := copyWithHistory(t, img)
			cmd := exec.Command(offvm, "reg", "import", crashed, second)
			cmd.Env = append(os.Environ(), "OFFVM_FAULT="+point)
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
				t.Fatalf("reg import with the fault point: %v", err)
			}
			mustOffvm(t, "check", crashed)
			if point != "before-undo" {
				// The undo journal (txn/doc.go): killed before the commit's
				// APLD mark, recovery undoes it — the image is the first
				// state, and the history holds the first commit only.
				if v := checkWindowsGuest(t, crashed); v != "1.0" {
					t.Errorf("after recovery Version = %q, want the old 1.0", v)
				}
				qemuSame(t, crashed, state1)
				var cs []logEntry
				must(t, json.Unmarshal([]byte(mustOffvm(t, "log", "--json", crashed)), &cs))
				if len(cs) != 1 || cs[0].ID != 1 {
					t.Errorf("history after an undone commit: %+v", cs)
				}
				return
			}
			if v := checkWindowsGuest(t, crashed); v != "2.0" {
				t.Errorf("after recovery Version = %q, want the new 2.0", v)
			}
			var cs []struct {
				logEntry
				Unknown string `json:"guest_unknown"`
			}
			must(t, json.Unmarshal([]byte(mustOffvm(t, "log", "--json", crashed)), &cs))
			if len(cs) != 2 || cs[0].ID != 2 || cs[1].MadeBy.Command != "reg import" || cs[0].State != "undoable" {
				t.Fatalf("history after the crash: %+v", cs)
			}
			d := mustOffvm(t, "diff", crashed)
			if point == "history-guest" {
				if cs[0].MadeBy.Command != "unknown" || !strings.Contains(cs[0].Unknown, "recovery") || !strings.Contains(d, "computed now") {
					t.Errorf("killed before its record: %+v\n%s", cs[0], d)
				}
			} else if cs[0].MadeBy.Command != "reg import" || cs[0].Guest == nil || cs[0].Guest.Values != 1 || strings.Contains(d, "computed now") {
				t.Errorf("killed after its record was written: %+v\n%s", cs[0], d)
			}
			if !strings.Contains(d, `~ HKLM\SOFTWARE\Contoso\Agent\Version: 1.0 -> 2.0`) {
				t.Errorf("diff after the crash:\n%s", d)
			}
			mustOffvm(t, "rollback", "--to", "2", crashed)
			qemuSame(t, crashed, state1)
		})
	}
}
