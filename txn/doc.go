// Package txn is the transaction layer between the container formats
// (vdisk) and everything that writes to a guest disk.
//
// While an image is mounted nothing touches its files: writes land in an
// Overlay, a copy-on-write layer whose changed blocks live in an unlinked
// temporary file. At unmount Commit turns the overlay into one crash-safe
// transaction:
//
//  1. the image is opened writable through a staging OpenFile, so the
//     container format computes every host write (data blocks, tables,
//     headers) without any of them reaching a real file;
//  2. an undo journal (<image>.offvm-journal) records, for every host
//     file touched, its old and new length and, for each changed region,
//     its old bytes (none where they were zeros or past the file's old
//     end) and a hash of its new bytes, closed by a SHA-256 over
//     everything before it (the seal); the journal and its name are
//     fsynced;
//  3. the new bytes are written into place, once, from the stager, and
//     the files are set to their new lengths and fsynced;
//  4. an APLD record, appended to the journal and fsynced, marks the
//     commit applied: this is the commit point;
//  5. the journal is renamed to the undo record (<image>.offvm-undo),
//     which Rollback uses to restore the image.
//
// Recover, on a journal it finds: without a valid seal, drops it; sealed
// without APLD, writes every region's old bytes back (zeros for UNDZ),
// sets every file to its old length, fsyncs and drops the journal; with
// APLD, checks the files are as the mark recorded and finishes step 5.
// Rollback is journaled the same way: the undo record is renamed to
// <image>.offvm-rollback before the first old byte is written back, and
// Recover finishes a rollback it finds.
//
// Every offvm command that opens an image calls Recover first, under the
// image's Lock, which takes qemu-compatible OFD locks so that a running
// qemu and offvm keep out of each other's way.
//
// # Why the undo journal is safe
//
// Claim: a crash (kill -9 or power loss) at any point of a commit leaves
// files that Recover turns into exactly the old image or exactly the new
// one, and it is the new one only if the APLD mark was durable.
//
//  1. Before the seal is durable (file fsynced, then its directory), no
//     byte of the image's files was written: staging writes only the
//     stager's anonymous spill, and step 3 starts after both syncs
//     returned. A crash here leaves the old files and a journal that is
//     missing, torn, or sealed. Missing or torn: Recover finds no valid
//     seal (every record has a CRC, the seal a SHA-256 over every byte
//     before it) and drops it: old image. Sealed: case 2 below applies,
//     and writing back old bytes that are still in place changes nothing.
//  2. Sealed, without a durable APLD: step 3 may have reached the disk in
//     any part, in any order (the page cache writes back as it likes).
//     Every byte step 3 writes lies in a region of the journal (it
//     writes exactly the regions' new bytes, nothing else) or past the
//     file's old length. Writing each region's old bytes back restores
//     every byte below the old length that step 3 may have changed; the
//     truncate to the old length removes the rest and gives back a
//     shrunk file's tail (its old bytes are a region too). So the files
//     are the old ones whatever subset of step 3 is on disk. The undo is
//     absolute writes and a truncate, so a crash during it leaves a state
//     of the same kind, and the next Recover undoes again: idempotent.
//     Only after the undo is fsynced is the journal removed.
//  3. APLD is durable: it is written only after step 3's fsyncs
//     returned, so every new byte and length is on disk: new image. The
//     rename in step 5 is atomic; a crash before it leaves the applied
//     journal, which Recover renames (after checking size and mtime).
//
// All-or-nothing holds with "nothing" the outcome of any crash before
// step 4, and the old image needs no new bytes to be restored: hence the
// journal holds none. Recover refuses (ErrRecoverRefused) to write over
// files whose lengths no interrupted apply can leave, or whose size or
// mtime differ from an APLD mark: something else wrote there since.
//
// Rollback is exact for the same reason as case 2: the undo record holds
// the old bytes of every region the commit wrote and the old lengths.
// Before restoring it checks that the image still is what the commit
// left: each file's size and mtime as APLD recorded them, and each
// region's bytes against the hash of its new bytes (xxh64; an older
// offvm's records hold the new bytes themselves and are compared byte for
// byte). rollback --to chains the same records, newest first.
//
// The crash-state explorer (crashstate_test.go, TestFormatsCrashStates
// for every container format qemu-img makes) checks this claim
// mechanically: it records every write, truncate, fsync, create, rename
// and directory sync of a commit, and for every prefix builds the states
// a power loss can leave (each subset, or a sample, of the writes not yet
// fsynced; directory operations not yet synced lost newest first), runs
// Recover on each and requires the old or the new image, and that a
// second Recover has nothing to do. The fault points (-tags offvmfault)
// kill a child process at every step, and an injected I/O error and a
// full file system in step 3 show the commit undone in place.
//
// # Container formats
//
// The formats write their metadata through the stager like their data,
// so it is journaled as host-file regions like any other byte: nothing is
// format-specific in the journal. What a commit may change, and how the
// undo restores it:
//
//   - raw: data in place; old bytes journaled (UNDZ, no bytes, over zeros).
//   - qcow2: new clusters appended past the file's old end (undone by the
//     truncate, no old bytes); L2 tables and refcount blocks updated in
//     place, or new ones appended; the L1 table and the header (size of
//     the refcount table, cleared autoclear bits) in place: regions with
//     their old bytes.
//   - VHD (dynamic): a new block goes where the footer stood and the
//     footer moves past it: the old footer's bytes are a region's old
//     bytes, the growth is truncated; BAT entries and block bitmaps in
//     place; the footer copy at offset 0 when it was found damaged.
//   - VHDX: payload blocks appended (truncated on undo); BAT entries and
//     the headers' sequence numbers, write GUIDs and cleared log GUID in
//     place. The format's own log is not used for these writes (the
//     transaction covers them); a log the image had is replayed by the
//     writable open, through the stager, so its writes are regions too.
//   - VMDK (sparse): grains and new grain tables appended, grain tables
//     and both directories updated in place, the descriptor's CID when it
//     changes.
//
// A crash between the in-place writes of step 3 leaves a container whose
// tables may disagree with its data until Recover runs; every offvm
// command runs Recover first, and qemu is kept out by the image's lock
// while offvm holds it. A tool that opens the image before any offvm
// command does would see such a state, as it would have seen a half-
// replayed redo journal before.
//
// # Cost
//
// A commit now writes the change durably once, plus the old bytes of
// regions that held data (none for free space that was zeros, or for
// space past the old end). Before (journal format version 1, a redo
// journal, which Recover and Rollback still read), it wrote every new
// byte twice, into the journal and into place, and hashed all of them
// three times (sealing, verifying, replaying). BenchmarkCommitPhases and
// the write figure of make bench measure both; README "Performance" has
// the numbers.
package txn
