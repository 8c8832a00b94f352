// Package hive reads, replays, edits and writes Windows registry hive files
// (regf, versions 1.3 to 1.6).
//
// The model is lazy: Parse keeps the hive bins data as one byte slice and
// decodes a key's subkeys and values only when they are asked for, so opening
// a 100 MiB SOFTWARE hive and listing one key touches only that key's cells.
// Edits replace the decoded parts of the keys they touch; Serialize walks the
// whole tree (reading untouched subtrees straight from the original cells
// without keeping them) and lays out a fresh, compact regf file.
//
// # Saving in place
//
// SaveChanges writes a small change to a clean hive the way Windows does:
// the keys edits touched (their dirty bits) get new value and subkey lists,
// the cells those replace are freed (deleted subtrees whole, security
// reference counts lowered, an unreferenced sk cell unlinked), new cells go
// into the free cells of the bins already being rewritten (best fit, split),
// then into bins appended at the end, and the nk cells are updated where
// they are. The result is the changed bins, the appended bins and a new base
// block. The model is not touched: the bins are copies, and the bins not
// copied are the same in the new file, so a lazily read hive keeps reading
// from it. Anything else (a replayed hive, a second save, SetSecurity, a
// change of over half the hive, an inconsistency met on the way) is written
// whole by Serialize.
//
// # Reading from a file lazily
//
// ParseReaderAt goes one step further for a clean hive (right checksum,
// equal sequence numbers): it reads the base block only, and fills the
// bins data 4 KiB page by page from the file as cells are first touched,
// checking each hive bin's header when one of its pages is first needed.
// One lookup in an 11 MiB SYSTEM hive reads about 60 KiB of it. A defect in
// a bin not yet read shows up when (and only if) a cell there is used; a
// short or failing read gives an error wrapping ErrCorrupt or EIO for the
// cell that needed it. Serialize reads the rest first and checks every
// bin as Parse does. A dirty hive is read whole and replayed as by Parse.
//
// # Transaction logs
//
// Parse replays the logs given to it when the base block says the hive is
// dirty (a bad checksum, or primary and secondary sequence numbers that
// differ): new-format logs (Windows 8.1 and later: HvLE entries, Marvin32
// hashes) from .LOG1 then .LOG2 in sequence-number order, and old-format logs
// (Vista/7: a DIRT bitmap of 512-byte pages) whose base block matches the
// primary's timestamp. A log whose entries fail their checks is not replayed
// past the bad entry, as Windows does; a dirty hive no log can repair is
// refused with ErrDirty wrapped in an error that says why.
//
// # Recovery rules
//
// As Windows does (the regf format's "Transaction log files" rules): a
// primary's base block is valid when it has the regf signature, the right
// checksum, version 1.3 to 1.6 and the primary file type. An invalid one
// makes the hive dirty and is replaced by a log's base block (the new-
// format log with the latest sequence number, or the first old-format log
// whose own base block is valid and complete); no log, no hive (ErrDirty).
// A log whose own base block is invalid is never used. A dirty hive with a
// valid base block that no log repairs is read as its primary holds it and
// ReadOnly says why (each log and its reason): it may lack the last writes
// or hold half of one, so nothing may be written from it.
//
// # Logs beside a rewritten hive
//
// A hive written by Serialize is clean: its checksum is right and its
// primary and secondary sequence numbers are equal. Windows replays a log
// only into a dirty hive, so the stale .LOG1/.LOG2 (and .LOG) beside it are
// ignored at the next boot. Two further guards keep it that way even if the
// hive is later left dirty by a crash of Windows itself before its first
// flush: Serialize numbers the new hive with a sequence number above every
// sequence number seen in the old hive and its logs (so no old HvLE entry is
// "subsequent" to it), and the caller should replace each log file beside the
// hive with ResetLog's output: a log holding only a base block that matches
// the new hive (same sequence numbers and timestamp) and no entries. Empty
// (zero-length) log files are also accepted by Windows, but a matching base
// block keeps tools that insist on a valid log header content.
package hive
