package txn

import (
	"fmt"
	"syscall"
)

// FaultEnv names the environment variable that makes the process kill
// itself (SIGKILL, as a power cut would stop it) at a named point of a
// commit, rollback or recovery. Tests use it to prove that every such
// point leaves an image Recover can bring to either its old or its new
// state. It is read only by a binary built with -tags offvmfault (the
// tests build so); a release binary has no fault points at all.
const FaultEnv = "OFFVM_FAULT"

// Fault points, in the order a commit and a rollback pass them.
const (
	FaultStaged         = "commit-staged"    // format closed into staging, no journal yet
	FaultJournalPartial = "journal-partial"  // half the journal written, not synced
	FaultJournalWritten = "journal-written"  // journal complete and synced, nothing applied
	FaultMidApply       = "mid-apply"        // half the regions applied
	FaultApplied        = "applied"          // all applied and synced, journal not marked
	FaultBeforeUndo     = "before-undo"      // journal marked applied, not yet the undo record
	FaultRollbackMarked = "rollback-marked"  // undo record renamed to rollback, nothing restored
	FaultMidRollback    = "mid-rollback"     // half the old bytes restored
	FaultRollbackDone   = "rollback-applied" // all restored and synced, record not removed
	FaultMidRecover     = "mid-recover"      // Recover replaying a journal, half done
	// FaultApplyError makes the apply of a commit fail half-way with an
	// I/O error (EIO) instead of killing the process, once per process:
	// the commit after it succeeds, as after a transient fault.
	FaultApplyError = "apply-error"
)

// errInjected is the error FaultApplyError injects: an I/O error.
var errInjected = fmt.Errorf("injected I/O error: %w", syscall.EIO)

// FaultPoints lists every fault point.
var FaultPoints = []string{
	FaultStaged, FaultJournalPartial, FaultJournalWritten, FaultMidApply,
	FaultApplied, FaultBeforeUndo, FaultRollbackMarked, FaultMidRollback,
	FaultRollbackDone, FaultMidRecover,
}
