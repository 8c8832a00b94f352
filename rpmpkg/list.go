package rpmpkg

import (
	"fmt"
	"os"
	"sort"
)

// Packages parses the header of each record into the package list offvm
// shows: signing keys left out, sorted by name then architecture.
func Packages(recs []Record) ([]Package, error) {
	var out []Package
	for _, r := range recs {
		p, err := ParseHeader(r.Blob)
		if err != nil {
			return nil, fmt.Errorf("package %d: %w", r.Index, err)
		}
		if p.Name == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Arch < out[j].Arch
	})
	return out, nil
}

// ListBDB lists the packages of a Berkeley DB Packages file at path.
func ListBDB(path string) ([]Package, error) { return listFile(path, ReadBDB) }

// ListNDB lists the packages of an ndb Packages.db file at path.
func ListNDB(path string) ([]Package, error) { return listFile(path, ReadNDB) }

func listFile(path string, read func([]byte) ([]Record, error)) ([]Package, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := read(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pkgs, err := Packages(recs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pkgs, nil
}
