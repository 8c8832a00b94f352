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
// variable) or a command spends its time: go tool pprof FILE.<pid>. With
// $OFFVM_MEMPROFILE set, the allocations made (go tool pprof
// -sample_index=alloc_space) are written to $OFFVM_MEMPROFILE.<pid> at
// the end: where the garbage collector's work comes from.
// The returned function ends the profiles; call it before exiting.
func startProfile() func() {
	stopCPU := startCPUProfile()
	return func() {
		stopCPU()
		writeMemProfile()
	}
}

func startCPUProfile() func() {
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

func writeMemProfile() {
	prefix := os.Getenv("OFFVM_MEMPROFILE")
	if prefix == "" {
		return
	}
	name := fmt.Sprintf("%s.%d", prefix, os.Getpid())
	f, err := os.Create(name)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		slog.Error("allocation profile not written", "file", name, "err", err)
	}
}
