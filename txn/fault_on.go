//go:build offvmfault

package txn

import (
	"os"
	"sync/atomic"
	"syscall"
)

// FaultsBuilt says whether this binary honours FaultEnv.
const FaultsBuilt = true

// faultIs reports whether FaultEnv names point.
func faultIs(point string) bool { return point != "" && os.Getenv(FaultEnv) == point }

// applyErrorFired makes FaultApplyError fire once per process.
var applyErrorFired atomic.Bool

// injectApplyError reports whether this apply should fail with
// errInjected.
func injectApplyError() bool {
	return faultIs(FaultApplyError) && !applyErrorFired.Swap(true)
}

// fault kills the process when FaultEnv names point.
func fault(point string) {
	if !faultIs(point) {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously; never go on
}

// rearmFaults lets FaultApplyError fire again (tests run many commits in
// one process).
func rearmFaults() { applyErrorFired.Store(false) }
