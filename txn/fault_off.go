//go:build !offvmfault

package txn

// FaultsBuilt says whether this binary honours FaultEnv: a release build
// does not, so no environment can make it stop half-way on purpose.
const FaultsBuilt = false

func faultIs(string) bool { return false }

func fault(string) {}

func injectApplyError() bool { return false }

func rearmFaults() {}
