package mount

import (
	"fmt"

	"github.com/offvm/offvm/txn"
)

// Rollback restores the image to what it was before its last commit,
// under its lock (a running qemu, or a mount, keeps it from happening).
func Rollback(path string) error {
	lock, err := txn.Lock(path)
	if err != nil {
		return fmt.Errorf("%s: cannot roll back: %w", path, err)
	}
	defer lock.Close()
	return txn.Rollback(path)
}

// CheckResult is what `offvm check` says of one image.
type CheckResult struct {
	Image     string   `json:"image"`
	Recovered bool     `json:"recovered"`
	OK        bool     `json:"ok"`
	Problems  []string `json:"problems"`
}

// Check finishes an interrupted commit, then opens the container, its
// partition table and every file system, reporting what fails.
func Check(path string) CheckResult {
	r := CheckResult{Image: path, Problems: []string{}}
	lock, err := txn.Lock(path)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r
	}
	r.Recovered, err = txn.Recover(path)
	lock.Close()
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r
	}
	im, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r
	}
	defer im.Close()
	for _, v := range im.Volumes() {
		if v.Err != nil {
			r.Problems = append(r.Problems, v.Err.Error())
		}
	}
	r.OK = len(r.Problems) == 0
	return r
}
