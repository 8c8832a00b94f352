package txn

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzHistoryFiles feeds forged manifests and rollback plans to History,
// Recover and RollbackTo: none may panic, and a plan naming anything but
// the image's own undo records must not get a byte written.
func FuzzHistoryFiles(f *testing.F) {
	f.Add([]byte(`{"id":1,"time":"2026-01-02T03:04:05Z","made_by":{"command":"unmount"},"seal":"00","bytes":4,"files":[{"path":"img","old_len":8,"new_len":8,"bytes":4,"ranges":[[0,4]]}]}`),
		[]byte(`{"target":1,"ids":[1],"records":["img.offvm-history/000001.undo"],"seals":["00"],"done":false}`))
	f.Add([]byte(`{"id":2}`), []byte(`{"target":1,"ids":[1],"records":["other"],"seals":["x"]}`))
	f.Add([]byte(`not json`), []byte(`{"target":1,"ids":[1,2],"records":["../x"],"seals":["a"],"done":true}`))
	syncOff = true
	f.Cleanup(func() { syncOff = false })
	f.Fuzz(func(t *testing.T, manifest, plan []byte) {
		dir := t.TempDir()
		image := filepath.Join(dir, "img")
		other := filepath.Join(dir, "other")
		os.WriteFile(image, []byte("01234567"), 0o644)
		os.WriteFile(other, []byte("abcdefgh"), 0o644)
		os.Mkdir(HistoryDir(image), 0o755)
		os.WriteFile(manifestPath(image, 1), manifest, 0o644)
		os.WriteFile(planPath(image), plan, 0o644)
		History(image)
		Recover(image)
		RollbackTo(image, 1)
		a, _ := os.ReadFile(image)
		b, _ := os.ReadFile(other)
		if !bytes.Equal(a, []byte("01234567")) || !bytes.Equal(b, []byte("abcdefgh")) {
			t.Fatal("a forged manifest or plan got bytes written")
		}
	})
}

// FuzzHistoryPending feeds forged pending records to History and
// LastCommit beside a real undo record that has no manifest (a crash
// came before it): none may panic, and the commit stays undoable.
func FuzzHistoryPending(f *testing.F) {
	f.Add([]byte(`{"prefix_len":32,"prefix_sha256":"00","made_by":{"command":"x"},"guest":{"files":1,"values":2},"guest_changes":[{"op":"+"}]}`))
	f.Add([]byte(`{"prefix_len":-5,"prefix_sha256":""}`))
	f.Add([]byte(`{"prefix_len":999999999,"prefix_sha256":"zz"}`))
	f.Add([]byte(`[]`))
	syncOff = true
	f.Cleanup(func() { syncOff = false })
	seed := f.TempDir()
	image := filepath.Join(seed, "disk.img")
	if err := os.WriteFile(image, make([]byte, 8*BlockSize), 0o644); err != nil {
		f.Fatal(err)
	}
	if _, err := commitTarget(image, "raw", bytes.Repeat([]byte{7}, 8*BlockSize)); err != nil {
		f.Fatal(err)
	}
	undo, err := os.ReadFile(UndoPath(image))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pending []byte) {
		dir := t.TempDir()
		img := filepath.Join(dir, "disk.img")
		os.WriteFile(img, bytes.Repeat([]byte{7}, 8*BlockSize), 0o644)
		os.WriteFile(UndoPath(img), undo, 0o644)
		os.Mkdir(HistoryDir(img), 0o755)
		os.WriteFile(filepath.Join(HistoryDir(img), "pending-0000000000000000.json"), pending, 0o644)
		cs, err := History(img)
		if err != nil || len(cs) != 1 || !cs[0].CanUndo {
			t.Fatalf("history beside a forged pending record: %+v, %v", cs, err)
		}
		LastCommit(img)
	})
}
