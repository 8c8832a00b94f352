package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this process to
// $OFFVM_CPUPROFILE.<pid> when that is set, so that a benchmark can see
// where the daemon (a child of `offvm mount`, which inherits the
// variable) or a command spends its time: go tool pprof FILE.<pid>.
// The returned function ends the profile; call it before exiting.
func startProfile() func() {
	prefix := os.Getenv("OFFVM_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	name := fmt.Sprintf("%s.%d", prefix, os.Getpid())
	f, err := os.Create(name)
	if err != nil {
		slog.Error("no CPU profile", "file", name, "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		slog.Error("no CPU profile", "file", name, "err", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			slog.Error("CPU profile not written", "file", name, "err", err)
		}
	}
}
