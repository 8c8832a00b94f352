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

// ListingNarrower is a ChangeFinder that can also list one directory of
// both sides without the entries that lie in bytes neither side changed:
// in a directory of 40,000 names where a commit touched a few index
// blocks, the summary then compares tens of names, not 2x40,000.
type ListingNarrower interface {
	// NarrowListings lists directory dir of this volume (before the
	// commit) and of after (the same engine's volume after it), each as
	// ReadDir would and in its order, minus entries both sides hold in
	// unchanged bytes whose Ino keep rejects: every entry left out is on
	// both sides, same name, same Ino. left is how many this side left
	// out. An error means it cannot tell: the caller lists both whole.
	NarrowListings(dir Ino, after FS, changed []Extent, keep func(Ino) bool) (before, afterList []DirEntry, left int, err error)
}
