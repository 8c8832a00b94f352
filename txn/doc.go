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
//
// # Where a commit's time goes, and a cheaper design (not implemented yet)
//
// BenchmarkCommitPhases splits a 64 MiB commit of a raw image (make
// bench, 2026-12-03): staging (the format's writes into the stager's
// temporary file) 119-125 ms, the journal (new bytes, plus old bytes where
// they were not zero, then fsync) 209 ms over zeros and 273 ms over data,
// the apply (new bytes in place, then fsync) 139-228 ms: the journal is
// the largest part. The journal's new bytes are the price of redo: after
// a crash past the seal, Recover rolls the commit forward from them.
//
// An undo journal keeps the same guarantees with the new bytes written
// once:
//
//  1. stage as now;
//  2. journal, for every region, only its old bytes (REGZ and "file grows"
//     records carry none: the old content is zeros, or the file's old
//     length), seal and fsync it, and its name;
//  3. write the new bytes in place from the stager, fsync the files;
//  4. append APLD and fsync: this is the commit point;
//  5. rename the journal to the undo record, as now.
//
// Recover on an undo journal: unsealed, drop it (nothing was written in
// place: step 3 starts only after the seal is durable); sealed without
// APLD, write every region's old bytes back (zeros for REGZ), truncate
// each file to its old length, fsync, drop it: the image is as before,
// byte for byte, whatever part of step 3 had reached the disk, since every
// byte step 3 may have touched is described by a region; with APLD, the
// commit is complete. All-or-nothing holds, with "nothing" the outcome of
// any crash before step 4 (the redo journal gives "all" after step 2); the
// undo record for Rollback is the same old bytes as now. Cost: new bytes
// once, plus old bytes only where the image held data; writing into free
// space of a fresh image (the bench's write figure) becomes about one
// write of the change instead of two. The crash-state tests of FaultEnv
// would each gain an undo-journal case (a crash at every point of step 3
// must read back as the old image).
package txn
