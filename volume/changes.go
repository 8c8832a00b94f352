package volume

// Extent is a range of a device's bytes.
type Extent struct {
	Off, Len int64
}

// ChangeFinder is an engine that can say which of its files a set of
// changed device bytes may have changed, from the bytes themselves (its
// records, inode tables, directory blocks), whoever wrote them. A
// commit's summary asks both sides (the volume before and after the
// commit) and compares only those files and the directories that hold
// them, instead of the whole volume (guestdiff/pruned.go). Engines
// without it get the whole walk.
type ChangeFinder interface {
	// Touched lists the files and directories whose metadata lies in
	// changed (device offsets), read as this volume holds them: a file
	// only the other side has may be listed too. Every file whose
	// attributes, name or listing differ between the two sides must be
	// listed by at least one side; listing more costs only time. An
	// error means the engine cannot tell: the caller walks everything.
	Touched(changed []Extent) ([]Ino, error)
	// Parents lists the directories that hold a name of ino (one per
	// parent, hard links included); none for the root or a file not in
	// use on this volume.
	Parents(ino Ino) ([]Ino, error)
}
