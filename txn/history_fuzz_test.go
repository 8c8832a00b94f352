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
