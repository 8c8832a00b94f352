package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
)

// valueCmd appends a record of values measured elsewhere: one per run.
func valueCmd(args []string) error {
	fs := flag.NewFlagSet("value", flag.ContinueOnError)
	out := fs.String("out", "runs.jsonl", "file the record is appended to")
	id := fs.String("id", "", "figure id (stable across runs, for comparing bench.json files)")
	label := fs.String("label", "", "what the figure measures")
	unit := fs.String("unit", "", "unit of the values (MB, s, ...)")
	how := fs.String("verified", "", "how the script checked the figure means something")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rec, err := valueRecord(*id, *label, *unit, fs.Args())
	if err != nil {
		return err
	}
	rec.Verified = *how
	summarize(rec)
	printRecord(os.Stdout, rec)
	return appendRecord(*out, rec)
}

// valueRecord parses the values; a figure with none, or one that is not a
// finite number (a measurement that failed and printed nothing), is
// refused rather than recorded as 0.
func valueRecord(id, label, unit string, vals []string) (*Record, error) {
	if id == "" || unit == "" {
		return nil, fmt.Errorf("value: -id and -unit are needed")
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("value %s: no values", id)
	}
	rec := &Record{ID: id, Label: label, Unit: unit}
	for _, v := range vals {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("value %s: %q is not a number", id, v)
		}
		rec.OffvmS = append(rec.OffvmS, x)
	}
	return rec, nil
}
