package rpmpkg

import (
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // pure Go: no cgo, no host library
)

// ListSQLite lists the packages of rpmdb.sqlite at path, a host file (a
// copy of the guest's, with its -wal beside it when there is one: the
// copy is opened read-write so that SQLite can read the WAL).
func ListSQLite(path string) ([]Package, error) {
	db, err := sql.Open("sqlite", "file:"+url.PathEscape(path)+"?_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT hnum, blob FROM Packages")
	if err != nil {
		return nil, fmt.Errorf("%s: reading the Packages table: %w", path, err)
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		var hnum int64
		var blob []byte
		if err := rows.Scan(&hnum, &blob); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		recs = append(recs, Record{Index: uint32(hnum), Blob: blob})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pkgs, err := Packages(recs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pkgs, nil
}
