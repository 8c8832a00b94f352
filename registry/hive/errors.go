package hive

import "errors"

// Errors callers can test with errors.Is.
var (
	// ErrCorrupt marks a hive or log whose structures are inconsistent.
	ErrCorrupt = errors.New("corrupt hive")
	// ErrDirty marks a dirty hive that no given log could repair.
	ErrDirty = errors.New("dirty hive without a usable log")
	// ErrBadLog marks a transaction log that fails its own checks.
	ErrBadLog = errors.New("bad transaction log")
	// ErrNotFound is returned when a key or value does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExist is returned when creating something that already exists.
	ErrExist = errors.New("already exists")
	// ErrInvalid is returned for an argument the hive cannot hold.
	ErrInvalid = errors.New("invalid argument")
)
