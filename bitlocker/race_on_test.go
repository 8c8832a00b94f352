//go:build race

package bitlocker

// RaceEnabled: the race detector slows the sequential crypto of the
// full-volume comparisons tenfold without finding anything in them; they
// run in the plain `go test` of make unit, the concurrency test here.
const RaceEnabled = true
