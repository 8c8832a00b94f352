package txn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// blockDiffer is a GuestDiffer for tests: the "guest" is the disk's
// 4 KiB blocks, and the changes are the indexes of those that differ.
func blockDiffer(_ string, before, after vdisk.Disk, _ time.Time) (GuestRecord, error) {
	if before.Size() != after.Size() {
		return GuestRecord{}, errors.New("sizes differ")
	}
	a, b := make([]byte, BlockSize), make([]byte, BlockSize)
	changed := []int64{}
	for off := int64(0); off < before.Size(); off += BlockSize {
		before.ReadAt(a, off)
		after.ReadAt(b, off)
		if !bytes.Equal(a, b) {
			changed = append(changed, off/BlockSize)
		}
	}
	data, err := json.Marshal(changed)
	return GuestRecord{Summary: GuestSummary{Files: len(changed)}, Changes: data}, err
}

// withDiffer makes f the guest differ for one test.
func withDiffer(t *testing.T, f GuestDiffer) {
	t.Helper()
	SetGuestDiffer(f)
	t.Cleanup(func() { guestDiffer.Store(nil); guestBudget.Store(0) })
}

// diffBlocks is what blockDiffer must find between two contents.
func diffBlocks(a, b []byte) []int64 {
	out := []int64{}
	for off := 0; off < len(a); off += BlockSize {
		if !bytes.Equal(a[off:off+BlockSize], b[off:off+BlockSize]) {
			out = append(out, int64(off/BlockSize))
		}
	}
	return out
}

func pendingFiles(t *testing.T, image string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(HistoryDir(image), "pending-*"))
	return m
}

// TestHistoryGuestRecorded: each commit's manifest holds, as soon as it
// is committed, the changes the differ found between the image's files
// before the commit and the overlay: exactly the blocks that changed.
func TestHistoryGuestRecorded(t *testing.T) {
	withDiffer(t, blockDiffer)
	for _, format := range []string{"raw", "tfmt"} {
		dir := t.TempDir()
		image := filepath.Join(dir, "disk.img")
		const size = 48 * BlockSize
		data := randomBytes(1, size)
		if format == "raw" {
			rawImage(t, image, data)
		} else {
			tfmtImage(t, image, size, data[:8*BlockSize])
		}
		SetCommitNote(Note{Command: "guest test"})
		cur := readVirtual(t, image, format)
		var want [][]int64
		for i := 1; i <= 3; i++ {
			next := append([]byte(nil), cur...)
			copy(next[i*10*BlockSize:], randomBytes(uint64(30+i), 2*BlockSize+5))
			if _, err := commitTarget(image, format, next); err != nil {
				t.Fatalf("%s commit %d: %v", format, i, err)
			}
			want = append(want, diffBlocks(cur, next))
			cur = next
		}
		cs, err := History(image)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 3 {
			t.Fatalf("%s: %d commits", format, len(cs))
		}
		for _, c := range cs {
			var got []int64
			if err := json.Unmarshal(c.Changes, &got); err != nil || c.Guest == nil || c.GuestUnknown != "" {
				t.Fatalf("%s commit %d: changes %s (%v), guest %+v, unknown %q", format, c.ID, c.Changes, err, c.Guest, c.GuestUnknown)
			}
			if w := want[c.ID-1]; !slices.Equal(got, w) || c.Guest.Files != len(w) || c.Note.Command != "guest test" {
				t.Errorf("%s commit %d recorded blocks %v (%d), note %+v; the commit changed %v", format, c.ID, got, c.Guest.Files, c.Note, w)
			}
		}
		if p := pendingFiles(t, image); len(p) != 0 {
			t.Errorf("%s: pending records left: %v", format, p)
		}
	}
}

// TestHistoryGuestFailures: whatever goes wrong with the summary, the
// commit is made and its record says why its changes are unknown.
func TestHistoryGuestFailures(t *testing.T) {
	slow := func(_ string, _, _ vdisk.Disk, deadline time.Time) (GuestRecord, error) {
		for time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return GuestRecord{}, errors.New("out of time")
	}
	called := false
	for _, tc := range []struct {
		name   string
		differ GuestDiffer
		budget time.Duration
		want   string
	}{
		{"error", func(string, vdisk.Disk, vdisk.Disk, time.Time) (GuestRecord, error) {
			return GuestRecord{}, errors.New("no NTFS here")
		}, 0, "changes unknown: no NTFS here"},
		{"panic", func(string, vdisk.Disk, vdisk.Disk, time.Time) (GuestRecord, error) { panic("corrupt MFT") }, 0,
			"changes unknown: reading the guest failed: corrupt MFT"},
		{"budget", slow, 20 * time.Millisecond, "changes unknown: out of time"},
		{"off", func(string, vdisk.Disk, vdisk.Disk, time.Time) (GuestRecord, error) {
			called = true
			return GuestRecord{}, nil
		}, -1, "changes unknown: guest summaries are turned off"},
		{"none", nil, 0, "changes unknown: this program reads no guest file systems"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withDiffer(t, tc.differ)
			if tc.differ == nil {
				guestDiffer.Store(nil)
			}
			if tc.budget != 0 {
				SetGuestBudget(tc.budget)
			}
			image := filepath.Join(t.TempDir(), "disk.img")
			rawImage(t, image, randomBytes(2, 16*BlockSize))
			next := randomBytes(3, 16*BlockSize)
			start := time.Now()
			if _, err := commitTarget(image, "raw", next); err != nil {
				t.Fatalf("the commit failed: %v", err)
			}
			took := time.Since(start)
			if got := readVirtual(t, image, "raw"); !bytes.Equal(got, next) {
				t.Fatal("the image does not hold the commit")
			}
			cs, err := History(image)
			if err != nil || len(cs) != 1 {
				t.Fatalf("history %v, %v", cs, err)
			}
			if c := cs[0]; c.GuestUnknown != tc.want || c.Guest != nil || c.Changes != nil || !c.CanUndo {
				t.Errorf("record: unknown %q (want %q), guest %+v, changes %s, undoable %v", c.GuestUnknown, tc.want, c.Guest, c.Changes, c.CanUndo)
			}
			if tc.name == "budget" && took > 10*time.Second {
				t.Errorf("a 20ms budget let the commit take %v", took)
			}
		})
	}
	if called {
		t.Error("the differ ran with summaries turned off")
	}
}

// TestHistoryPendingBinding: a pending record that belongs to no commit
// (one whose apply failed and was undone) never describes the next
// commit, and the next commit removes it.
func TestHistoryPendingBinding(t *testing.T) {
	withDiffer(t, blockDiffer)
	image := filepath.Join(t.TempDir(), "disk.img")
	rawImage(t, image, randomBytes(4, 16*BlockSize))
	stale := &pendingRecord{PrefixLen: 32, PrefixSum: strings.Repeat("ab", 32), Note: Note{Command: "stale"},
		Guest: &GuestSummary{Files: 99}, Time: time.Unix(1, 0)}
	if err := writePending(image, stale); err != nil {
		t.Fatal(err)
	}
	SetCommitNote(Note{Command: "fresh"})
	if _, err := commitTarget(image, "raw", randomBytes(5, 16*BlockSize)); err != nil {
		t.Fatal(err)
	}
	cs, _ := History(image)
	if len(cs) != 1 || cs[0].Note.Command != "fresh" || cs[0].Guest == nil || cs[0].Guest.Files == 99 {
		t.Fatalf("the commit's record: %+v", cs)
	}
	if p := pendingFiles(t, image); len(p) != 0 {
		t.Errorf("pending records left: %v", p)
	}
}

// TestHistoryPendingUnwritable: when the pending record cannot be
// written (no space), the commit is made and still gets its record, from
// this process's memory.
func TestHistoryPendingUnwritable(t *testing.T) {
	withDiffer(t, blockDiffer)
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.img")
	rawImage(t, image, randomBytes(6, 16*BlockSize))
	SetCommitNote(Note{Command: "mem"})
	writePendingFile = func(path string, _ []byte) error { return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC} }
	t.Cleanup(func() { writePendingFile = writeFileDurably })
	if _, err := commitTarget(image, "raw", randomBytes(7, 16*BlockSize)); err != nil {
		t.Fatalf("commit with no room for its pending record: %v", err)
	}
	if p := pendingFiles(t, image); len(p) != 0 {
		t.Errorf("pending records: %v", p)
	}
	cs, err := History(image)
	if err != nil || len(cs) != 1 || cs[0].Note.Command != "mem" || cs[0].Guest == nil {
		t.Fatalf("the record from memory: %+v, %v", cs, err)
	}
}

// TestHistoryGuestParallel: commits to several images at once (a daemon
// commits each image at its own unmount), each recording its guest
// changes, while readers list the histories; each record is its own.
func TestHistoryGuestParallel(t *testing.T) {
	withDiffer(t, blockDiffer)
	const images, commits = 4, 3
	dir := t.TempDir()
	var wg sync.WaitGroup
	done := make(chan struct{})
	paths := make([]string, images)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("d%d.img", i))
		rawImage(t, paths[i], randomBytes(uint64(100+i), 16*BlockSize))
	}
	for _, p := range paths {
		wg.Add(1)
		go func() { // a reader
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				History(p)
				LastCommit(p)
			}
		}()
	}
	errs := make(chan error, images)
	var writers sync.WaitGroup
	for i, p := range paths {
		writers.Add(1)
		go func() {
			defer writers.Done()
			cur := randomBytes(uint64(100+i), 16*BlockSize)
			for k := 0; k < commits; k++ {
				next := append([]byte(nil), cur...)
				copy(next[(i+k)%16*BlockSize:], randomBytes(uint64(1000*i+k), BlockSize))
				lock, err := Lock(p)
				if err != nil {
					errs <- err
					return
				}
				_, err = commitTarget(p, "raw", next)
				lock.Close()
				if err != nil {
					errs <- err
					return
				}
				cur = next
			}
		}()
	}
	writers.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, p := range paths {
		cs, err := History(p)
		if err != nil || len(cs) != commits {
			t.Fatalf("image %d: %d commits, %v", i, len(cs), err)
		}
		for _, c := range cs {
			var blocks []int64
			json.Unmarshal(c.Changes, &blocks)
			if want := int64((i + c.ID - 1) % 16); len(blocks) != 1 || blocks[0] != want {
				t.Errorf("image %d commit %d recorded blocks %v, want [%d]", i, c.ID, blocks, want)
			}
		}
	}
}
