package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/offvm/offvm/rpmpkg"
	"github.com/offvm/offvm/volume"
)

// maxRPMDB bounds the rpm database copied out of a guest to be read.
const maxRPMDB = 512 << 20

// rpmDirs are where rpm keeps its database: /usr/lib/sysimage/rpm since
// rpm 4.16 (Fedora 36+, RHEL 9 link /var/lib/rpm to it), /var/lib/rpm
// before.
var rpmDirs = []string{"usr/lib/sysimage/rpm", "var/lib/rpm"}

// rpmPackages reads the guest's rpm database. found says whether the
// guest has one; a database offvm cannot read gives no list (unknown, not
// empty) and a problem saying why.
func rpmPackages(f volume.FS) (apps []Application, when *string, found bool, problem string) {
	for _, dir := range rpmDirs {
		if !exists(f, dir) {
			continue
		}
		found = true
		db := dir + "/rpmdb.sqlite"
		if !exists(f, db) {
			continue
		}
		pkgs, err := readRPMSQLite(f, db)
		if err != nil {
			return nil, nil, true, "rpm database: " + err.Error()
		}
		apps, when = rpmApplications(pkgs)
		return apps, when, true, ""
	}
	if !found {
		return nil, nil, false, ""
	}
	// older rpm: SUSE's ndb Packages.db, then Berkeley DB Packages (a
	// guest converted to ndb may keep its old Packages beside it)
	for _, dir := range rpmDirs {
		for _, db := range []struct {
			name string
			read func([]byte) ([]rpmpkg.Record, error)
		}{{"Packages.db", rpmpkg.ReadNDB}, {"Packages", rpmpkg.ReadBDB}} {
			path := dir + "/" + db.name
			if !exists(f, path) {
				continue
			}
			pkgs, err := readRPMFile(f, path, db.read)
			if err != nil {
				return nil, nil, true, "rpm database: " + err.Error()
			}
			apps, when = rpmApplications(pkgs)
			return apps, when, true, ""
		}
	}
	return nil, nil, true, "rpm database present but holds no database file offvm knows: applications unknown"
}

// readRPMFile reads an ndb or Berkeley DB package database of the guest.
func readRPMFile(f volume.FS, path string, read func([]byte) ([]rpmpkg.Record, error)) ([]rpmpkg.Package, error) {
	b, err := volume.ReadFile(f, path, maxRPMDB)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", path, err)
	}
	recs, err := read(b)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", path, err)
	}
	pkgs, err := rpmpkg.Packages(recs)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", path, err)
	}
	return pkgs, nil
}

// rpmApplications turns packages into applications, with the latest
// install time as when the software last changed.
func rpmApplications(pkgs []rpmpkg.Package) ([]Application, *string) {
	apps := []Application{}
	var last int64
	for _, p := range pkgs {
		apps = append(apps, Application{Name: p.Name, Version: strp(p.EVR()), Publisher: strp(p.Vendor)})
		last = max(last, p.InstallTime)
	}
	if last == 0 {
		return apps, nil
	}
	s := time.Unix(last, 0).UTC().Format(time.RFC3339)
	return apps, &s
}

// readRPMSQLite copies rpmdb.sqlite (and its write-ahead log, which holds
// the latest transactions until rpm checkpoints it) out of the guest into
// a private folder, where SQLite can open it.
func readRPMSQLite(f volume.FS, db string) ([]rpmpkg.Package, error) {
	tmp, err := os.MkdirTemp("", "offvm-rpmdb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, suffix := range []string{"", "-wal"} {
		b, err := volume.ReadFile(f, db+suffix, maxRPMDB)
		if err != nil {
			if suffix != "" {
				continue // no WAL: every transaction is in the database
			}
			return nil, fmt.Errorf("/%s: %w", db, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "rpmdb.sqlite"+suffix), b, 0o600); err != nil {
			return nil, err
		}
	}
	pkgs, err := rpmpkg.ListSQLite(filepath.Join(tmp, "rpmdb.sqlite"))
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", db, err)
	}
	return pkgs, nil
}
