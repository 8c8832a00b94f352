package testutil

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// FuzzStallLimit is how long one fuzz input may take before Watchdog
// calls it a stall: opening an image is bounded by its size, and fuzz
// images are a few MiB.
const FuzzStallLimit = 5 * time.Second

// Watchdog crashes the process, with every goroutine's stack, when the
// returned stop is not called within limit: a parser that stalls on one
// input is a bug, and a crash is what makes go test -fuzz keep that input
// as a crasher (a stall alone shows only as 0 execs/s).
func Watchdog(what string, limit time.Duration) (stop func()) {
	tm := time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "%s took more than %v on one input:\n%s\n", what, limit, buf[:n])
		panic(fmt.Sprintf("%s stalled for %v on one input", what, limit))
	})
	return func() { tm.Stop() }
}
