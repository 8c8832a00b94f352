package mount

import (
	"fmt"

	"github.com/offvm/offvm/registry/hive"

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
	r.Problems = append(r.Problems, im.checkHives()...)
	r.OK = len(r.Problems) == 0
	return r
}

// checkHives parses every hive of a Windows guest (replaying its logs in
// memory) and lists what is wrong with each.
func (im *Image) checkHives() []string {
	reg, _, err := im.Registry()
	if err != nil || reg == nil {
		return nil
	}
	var out []string
	for _, h := range reg.All() {
		hv, err := h.Load(reg.FS)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: hive %s: %v", im.Path, h.File, err))
			continue
		}
		errs := walkHive(hv.Root(), 0, nil)
		errs = append(errs, hv.Problems()...)
		for _, p := range errs {
			out = append(out, fmt.Sprintf("%s: hive %s: %v", im.Path, h.File, p))
		}
	}
	return out
}

// walkHive reads every key, value and data cell below k (the lazy parser
// finds damage only where it looks), stopping after a few errors.
func walkHive(k *hive.Key, depth int, errs []error) []error {
	const maxErrs, maxDepth = 10, 512
	if len(errs) >= maxErrs || depth > maxDepth {
		return errs
	}
	vals, err := k.Values()
	if err != nil {
		errs = append(errs, fmt.Errorf("key %s: %w", k.Path(), err))
	}
	for _, v := range vals {
		if _, err := v.Data(); err != nil {
			errs = append(errs, fmt.Errorf("key %s value %q: %w", k.Path(), v.Name(), err))
		}
	}
	subs, err := k.Subkeys()
	if err != nil {
		return append(errs, fmt.Errorf("key %s: %w", k.Path(), err))
	}
	for _, s := range subs {
		if errs = walkHive(s, depth+1, errs); len(errs) >= maxErrs {
			break
		}
	}
	return errs
}
