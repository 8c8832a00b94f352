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
//  2. a journal (<image>.offvm-journal) records, for every host file
//     touched, its old and new length and each changed region's new and old
//     bytes, closed by a SHA-256 over everything before it; it is fsynced;
//  3. the new bytes are applied to the real files, which are fsynced;
//  4. the journal, now marked applied, is renamed to the undo record
//     (<image>.offvm-undo), which Rollback uses to restore the image.
//
// A crash before step 2 completes leaves the image untouched and an
// incomplete journal that Recover drops; after it, Recover replays the
// journal (writes are absolute, so replay is idempotent). Rollback is
// journaled the same way: the undo record is renamed to
// <image>.offvm-rollback before the first old byte is written back, and
// Recover finishes a rollback it finds.
//
// Every offvm command that opens an image calls Recover first, under the
// image's Lock, which takes qemu-compatible OFD locks so that a running
// qemu and offvm keep out of each other's way.
package txn
