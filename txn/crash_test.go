package txn

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// runChild is the child side of the crash tests: it does one operation
// and says READY on stdout just before the part that may be killed.
func runChild(mode string) error {
	image := os.Getenv("TXN_IMAGE")
	switch mode {
	case "commit":
		target, err := os.ReadFile(os.Getenv("TXN_TARGET"))
		if err != nil {
			return err
		}
		open := openers[os.Getenv("TXN_FORMAT")]
		base, err := open(image, vdisk.Options{})
		if err != nil {
			return err
		}
		o, err := NewOverlay(base, filepath.Dir(image))
		if err != nil {
			return err
		}
		if err := writeTarget(o, target); err != nil {
			return err
		}
		fmt.Println("READY")
		if _, err = Commit(image, o, open); err != nil {
			return err
		}
		fmt.Println("DONE")
		return nil
	case "rollback":
		fmt.Println("READY")
		return Rollback(image)
	case "rollback-to":
		return historyChild(image)
	case "recover":
		fmt.Println("READY")
		_, err := Recover(image)
		return err
	}
	return fmt.Errorf("unknown child mode %q", mode)
}

// child is a running child process of this test binary.
type child struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

func startChild(t *testing.T, mode, image, format, target, fault string) *child {
	t.Helper()
	if fault != "" && !FaultsBuilt {
		t.Skip("fault points need go test -tags offvmfault (make test uses it)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	env := slices.DeleteFunc(os.Environ(), func(s string) bool {
		return strings.HasPrefix(s, FaultEnv+"=") || strings.HasPrefix(s, "TXN_")
	})
	cmd.Env = append(env, "TXN_CHILD="+mode, "TXN_IMAGE="+image, "TXN_FORMAT="+format, "TXN_TARGET="+target)
	if fault != "" {
		cmd.Env = append(cmd.Env, FaultEnv+"="+fault)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(out)}
	if line, err := c.out.ReadString('\n'); err != nil || line != "READY\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child %s did not get ready: %q, %v", mode, line, err)
	}
	return c
}

// wait reports whether the child died of SIGKILL; a child that failed
// otherwise fails the test.
func (c *child) wait(t *testing.T) (killed bool) {
	t.Helper()
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return false
}

// crashCase is an image, a target, and how to check an image that must be
// either old or new.
type crashCase struct {
	format string
	setup  func(t *testing.T, image string) []byte
	check  func(t *testing.T, image string) // extra checks by real tools, may be nil
	// classify says "old" or "new" for formats whose writes are not
	// byte-reproducible (random GUIDs, timestamps); nil compares sha256.
	classify func(t *testing.T, image string) string
}

var (
	commitFaults = []string{FaultStaged, FaultJournalPartial, FaultJournalWritten, FaultMidApply, FaultApplied, FaultBeforeUndo}
	// faultsNew are the points after the commit point, the APLD mark of
	// the undo journal: a crash there leaves the new image, anywhere
	// before it the old one
	faultsNew      = []string{FaultBeforeUndo}
	rollbackFaults = []string{FaultRollbackMarked, FaultMidRollback, FaultRollbackDone}
)

// crashFixture is a prepared crash case: the image directory to copy for
// each run, and the hashes of its old and new states.
type crashFixture struct {
	crashCase
	base, target     string
	oldHash, newHash string
}

func newCrashFixture(t *testing.T, cc crashCase) *crashFixture {
	f := &crashFixture{crashCase: cc, base: t.TempDir()}
	target := cc.setup(t, filepath.Join(f.base, "disk.img"))
	f.target = filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(f.target, target, 0o644); err != nil {
		t.Fatal(err)
	}
	f.oldHash = hashDir(t, f.base)
	exp := copyDir(t, f.base)
	directWrite(t, filepath.Join(exp, "disk.img"), cc.format, target)
	f.newHash = hashDir(t, exp)
	return f
}

// recoverAndClassify runs Recover and says whether the image is now
// "old" or "new"; anything else fails the test. A "new" image must roll
// back to "old".
func (f *crashFixture) recoverAndClassify(t *testing.T, dir string) string {
	state, _ := f.recoverAndClassifyR(t, dir)
	return state
}

// recoverAndClassifyR also says whether Recover found a transaction in
// progress.
func (f *crashFixture) recoverAndClassifyR(t *testing.T, dir string) (string, bool) {
	t.Helper()
	image := filepath.Join(dir, "disk.img")
	recovered, err := Recover(image)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if s := sidecars(t, dir); len(s) > 1 || (len(s) == 1 && s[0] != "disk.img"+UndoSuffix) {
		t.Fatalf("sidecars after Recover: %v", s)
	}
	state := ""
	switch h := hashDir(t, dir); {
	case h == f.oldHash:
		state = "old"
	case f.classify != nil:
		state = f.classify(t, image)
	case h == f.newHash:
		state = "new"
	default:
		t.Fatalf("after Recover the image is neither old nor new:\n%s", h)
	}
	if f.check != nil {
		f.check(t, image)
	}
	if state == "new" {
		if err := Rollback(image); err != nil {
			t.Fatalf("Rollback after recovery: %v", err)
		}
		if hashDir(t, dir) != f.oldHash {
			t.Fatal("Rollback after recovery did not restore the old image")
		}
	}
	return state, recovered
}

func (f *crashFixture) killCommitAt(t *testing.T, fault string) string {
	dir := copyDir(t, f.base)
	c := startChild(t, "commit", filepath.Join(dir, "disk.img"), f.format, f.target, fault)
	if !c.wait(t) {
		t.Fatalf("child passed fault point %s alive", fault)
	}
	return dir
}

func runCrashCase(t *testing.T, cc crashCase, randomKills int) {
	f := newCrashFixture(t, cc)
	t.Run("commit faults", func(t *testing.T) {
		for _, pt := range commitFaults {
			dir := f.killCommitAt(t, pt)
			want := "old"
			if slices.Contains(faultsNew, pt) {
				want = "new"
			}
			if got := f.recoverAndClassify(t, dir); got != want {
				t.Errorf("killed at %s: image %s after Recover, want %s", pt, got, want)
			}
		}
	})
	t.Run("recover killed", func(t *testing.T) {
		// half the new bytes are in place; the recovery undoing them dies
		// half-way too
		dir := f.killCommitAt(t, FaultMidApply)
		c := startChild(t, "recover", filepath.Join(dir, "disk.img"), f.format, f.target, FaultMidRecover)
		if !c.wait(t) {
			t.Fatal("recover child passed its fault point alive")
		}
		if got := f.recoverAndClassify(t, dir); got != "old" {
			t.Errorf("image %s, want old", got)
		}
	})
	t.Run("rollback faults", func(t *testing.T) {
		for _, pt := range rollbackFaults {
			dir := copyDir(t, f.base)
			target, _ := os.ReadFile(f.target)
			if _, err := commitTarget(filepath.Join(dir, "disk.img"), f.format, target); err != nil {
				t.Fatal(err)
			}
			c := startChild(t, "rollback", filepath.Join(dir, "disk.img"), f.format, f.target, pt)
			if !c.wait(t) {
				t.Fatalf("rollback child passed %s alive", pt)
			}
			if got := f.recoverAndClassify(t, dir); got != "old" {
				t.Errorf("rollback killed at %s: image %s, want old", pt, got)
			}
		}
	})
	t.Run("random kills", func(t *testing.T) { f.randomKills(t, randomKills) })
}

// randomKills kills commits after random delays spread over the time a
// whole commit takes.
func (f *crashFixture) randomKills(t *testing.T, n int) {
	dir := copyDir(t, f.base)
	c := startChild(t, "commit", filepath.Join(dir, "disk.img"), f.format, f.target, "")
	start := time.Now()
	if line, err := c.out.ReadString('\n'); line != "DONE\n" {
		t.Fatalf("unfaulted child said %q, %v", line, err)
	}
	span := time.Since(start)
	if c.wait(t) {
		t.Fatal("unfaulted child was killed")
	}
	if f.recoverAndClassify(t, dir) != "new" {
		t.Fatal("unfaulted commit did not give the new image")
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	seen := map[string]int{}
	interrupted := 0
	for range n {
		dir := copyDir(t, f.base)
		c := startChild(t, "commit", filepath.Join(dir, "disk.img"), f.format, f.target, "")
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.wait(t)
		state, recovered := f.recoverAndClassifyR(t, dir)
		seen[state]++
		if recovered {
			interrupted++
		}
	}
	t.Logf("commit takes %v in a child; of %d random kills, %d left a transaction for Recover; images old %d, new %d",
		span, n, interrupted, seen["old"], seen["new"])
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary many times")
	}
	for _, sc := range scenarios[1:] {
		t.Run(sc.name, func(t *testing.T) {
			runCrashCase(t, crashCase{format: sc.format, setup: sc.setup}, 6)
		})
	}
}

// TestRecoverCutJournal: a journal cut anywhere, or with any byte
// flipped, before anything went into place is dropped and leaves the old
// image; whole, an undo journal is undone (old image, whatever part of the
// commit had reached the files), and a redo journal an older offvm left
// is replayed (new image).
func TestRecoverCutJournal(t *testing.T) {
	f := newCrashFixture(t, crashCase{format: scenarios[3].format, setup: scenarios[3].setup})
	t.Run("undo journal", func(t *testing.T) {
		dir := f.killCommitAt(t, FaultJournalWritten)
		half := f.killCommitAt(t, FaultMidApply)
		if hashDir(t, half) == f.oldHash || hashDir(t, half) == f.newHash {
			t.Fatal("a commit killed half-way through its apply left the old or the new image: nothing to undo")
		}
		if got := f.recoverAndClassify(t, half); got != "old" {
			t.Fatalf("half applied, whole journal: image %s, want old", got)
		}
		cutJournals(t, f, dir, "old")
	})
	t.Run("redo journal", func(t *testing.T) {
		dir := copyDir(t, f.base)
		target, _ := os.ReadFile(f.target)
		sealRedoJournal(t, filepath.Join(dir, "disk.img"), f.format, target)
		cutJournals(t, f, dir, "new")
	})
}

// cutJournals tries the journal dir holds cut, flipped and whole on
// copies of the old image: whole gives want, damaged the old image.
func cutJournals(t *testing.T, f *crashFixture, dir, whole string) {
	jn, err := os.ReadFile(JournalPath(filepath.Join(dir, "disk.img")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func([]byte) []byte
		want string
	}{
		{"whole", func(b []byte) []byte { return b }, whole},
		{"empty", func(b []byte) []byte { return b[:0] }, "old"},
		{"header only", func(b []byte) []byte { return b[:headerSize] }, "old"},
		{"half", func(b []byte) []byte { return b[:len(b)/2] }, "old"},
		{"last byte missing", func(b []byte) []byte { return b[:len(b)-1] }, "old"},
		{"flipped data byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, "old"},
		{"flipped sha byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "old"},
		{"trailing garbage", func(b []byte) []byte { return append(b, "garbage"...) }, whole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, f.base)
			if err := os.WriteFile(JournalPath(filepath.Join(d, "disk.img")), tt.mod(slices.Clone(jn)), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := f.recoverAndClassify(t, d); got != tt.want {
				t.Errorf("image %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCrashKeepsPreviousUndo: a commit killed half-way through its apply
// is undone by Recover with the image's mtime too, so the commit before
// it can still be rolled back (its undo record checks the mtime).
func TestCrashKeepsPreviousUndo(t *testing.T) {
	sc := scenarios[1]
	f := newCrashFixture(t, crashCase{format: sc.format, setup: sc.setup})
	dir := copyDir(t, f.base)
	image := filepath.Join(dir, "disk.img")
	first := readVirtual(t, image, sc.format)
	copy(first[300000:], randomBytes(40, 5000))
	if _, err := commitTarget(image, sc.format, first); err != nil {
		t.Fatal(err)
	}
	afterFirst := hashDir(t, dir)
	c := startChild(t, "commit", image, f.format, f.target, FaultMidApply)
	if !c.wait(t) {
		t.Fatal("child passed mid-apply alive")
	}
	if hashDir(t, dir) == afterFirst {
		t.Fatal("the killed commit wrote nothing in place: nothing to undo")
	}
	if rec, err := Recover(image); !rec || err != nil {
		t.Fatalf("Recover: %v, %v", rec, err)
	}
	if hashDir(t, dir) != afterFirst {
		t.Fatal("Recover did not undo the killed commit")
	}
	if err := Rollback(image); err != nil {
		t.Fatalf("rolling back the first commit after the second was undone: %v", err)
	}
	if hashDir(t, dir) != f.oldHash {
		t.Fatal("Rollback did not restore the image before the first commit")
	}
}
