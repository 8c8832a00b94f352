// Command bench-tool runs the figures of `make bench` (scripts/bench.sh)
// and turns their timings into bench.json and the README's table.
//
//	bench-tool pair   -out runs.jsonl -id ID -label L -peer NAME -ra DIR -rb DIR -run CMD [-verify CMD] ...
//	bench-tool single -out runs.jsonl -id ID -label L -rb DIR -run CMD ...
//	bench-tool value  -out runs.jsonl -id ID -label L -unit MB V [V ...]
//	bench-tool report -in runs.jsonl -json bench.json [-readme README.md]
//
// value records figures a script measured itself (a daemon's peak RSS, a
// time it logged) as a single record, so that they land in bench.json and
// the README's table with the timed ones.
//
// Commands are bash snippets; each sees $R (the side's root), $SIDE (peer
// or offvm) and $RUN (the run's number). A benchmark, not a test: it
// never fails on a number, only when the two sides did not do the same
// work (different bytes read, different files written).
package main

import (
	"fmt"
	"log/slog"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-tool pair|single|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pair":
		err = pairCmd(os.Args[2:], true)
	case "single":
		err = pairCmd(os.Args[2:], false)
	case "value":
		err = valueCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		slog.Error("bench-tool", "err", err)
		os.Exit(1)
	}
}
