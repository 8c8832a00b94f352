//go:build race

package qcow2

// raceEnabled: the race detector slows byte loops tenfold; the longest
// whole-disk comparisons sample instead.
const raceEnabled = true
