package main

import (
	"fmt"
	"io"
	"slices"
)

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// summarize fills the medians and the ratio of each pair (peer time over
// offvm time: above 1, offvm is faster). Pairs are taken in run order, so
// the ratio compares runs made side by side under the same disk weather.
func summarize(r *Record) {
	r.OffvmMedian = median(r.OffvmS)
	r.OffvmMin, r.OffvmMax = slices.Min(r.OffvmS), slices.Max(r.OffvmS)
	r.OffvmCPUMed, r.PeerCPUMed = median(r.OffvmCPU), median(r.PeerCPU)
	if len(r.PeerS) == 0 {
		return
	}
	r.PeerMedian = median(r.PeerS)
	n := min(len(r.PeerS), len(r.OffvmS))
	ratios := make([]float64, 0, n)
	for i := range n {
		if r.OffvmS[i] > 0 {
			ratios = append(ratios, r.PeerS[i]/r.OffvmS[i])
		}
	}
	if len(ratios) == 0 {
		return
	}
	r.Ratio = median(ratios)
	r.RatioMin, r.RatioMax = slices.Min(ratios), slices.Max(ratios)
}

func printRecord(w io.Writer, r *Record) {
	if r.PeerMedian == 0 {
		fmt.Fprintf(w, "%-46s offvm %8.3f%s (%.3f–%.3f, %d runs)%s\n", r.Label, r.OffvmMedian, r.Unit, r.OffvmMin, r.OffvmMax, len(r.OffvmS), cpuLoad(r))
		return
	}
	fmt.Fprintf(w, "%-46s %-8s %8.3f%s  offvm %8.3f%s  ratio %5.2f (%.2f–%.2f, %d pairs)%s\n",
		r.Label, r.Peer, r.PeerMedian, r.Unit, r.OffvmMedian, r.Unit, r.Ratio, r.RatioMin, r.RatioMax, len(r.OffvmS), cpuLoad(r))
}

// cpuLoad is the record's CPU medians and load average, as printed after
// its times ("" for records without them).
func cpuLoad(r *Record) string {
	out := ""
	if len(r.OffvmCPU) > 0 {
		out = fmt.Sprintf("  CPU offvm %.2fs", r.OffvmCPUMed)
		if len(r.PeerCPU) > 0 {
			out += fmt.Sprintf(" peer %.2fs", r.PeerCPUMed)
		}
	}
	if len(r.Load) > 0 {
		out += "  load " + loads(r.Load)
	}
	return out
}

// loads prints load averages as "a–b" (or one value when they agree).
func loads(l []float64) string {
	lo, hi := slices.Min(l), slices.Max(l)
	if fmt.Sprintf("%.1f", lo) == fmt.Sprintf("%.1f", hi) {
		return fmt.Sprintf("%.1f", lo)
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}
