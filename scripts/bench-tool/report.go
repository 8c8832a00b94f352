package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Bench is bench.json: one run of make bench.
type Bench struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Quick   bool     `json:"quick"`
	Figures []Record `json:"figures"`
}

const (
	beginMark = "<!-- bench:begin (scripts/bench-tool report writes this table from bench.json) -->"
	endMark   = "<!-- bench:end -->"
)

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "runs.jsonl", "records written by pair and single")
	out := fs.String("json", "", "bench.json to write (empty: none)")
	from := fs.String("from", "", "read this bench.json instead of -in")
	readme := fs.String("readme", "", "README.md whose table to rewrite")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var b *Bench
	var err error
	if *from != "" {
		b, err = loadBench(*from)
	} else {
		b, err = collect(*in)
	}
	if err != nil {
		return err
	}
	if *out != "" {
		data, _ := json.MarshalIndent(b, "", "  ")
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	table := markdown(b)
	fmt.Print(table)
	if *readme != "" {
		return rewriteReadme(*readme, table)
	}
	return nil
}

func loadBench(path string) (*Bench, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Bench
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

func collect(path string) (*Bench, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b := &Bench{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine: machine(), Quick: os.Getenv("BENCH_QUICK") != ""}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		summarize(&r)
		b.Figures = append(b.Figures, r)
	}
	return b, sc.Err()
}

// machine describes where the figures were taken: they mean little
// without it.
func machine() string {
	osName := "unknown OS"
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(data), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %d GiB RAM", (kb+1<<19)>>20)
	}
	return fmt.Sprintf("%d cores%s, %s, Linux %s", runtime.NumCPU(), mem, osName, strings.TrimSpace(string(kernel)))
}

func markdown(b *Bench) string {
	var w bytes.Buffer
	kind := "full run"
	if b.Quick {
		kind = "BENCH_QUICK run (small sizes, few pairs: a smoke test, not a measurement)"
	}
	fmt.Fprintf(&w, "%s, %s, %s. Times are medians; the ratio is the median of the pairs' ratios (peer time / offvm time: above 1, offvm is faster), with its min–max.\n\n", b.Date, b.Machine, kind)
	fmt.Fprintln(&w, "| what | peer | peer median | offvm median | ratio (min–max) | pairs | CPU peer / offvm | load |")
	fmt.Fprintln(&w, "|---|---|---|---|---|---|---|---|")
	cell := strings.NewReplacer("|", `\|`).Replace // a pipe in a label would end its cell
	for _, r := range b.Figures {
		if r.PeerMedian == 0 {
			runs := fmt.Sprintf("%d runs", len(r.OffvmS))
			if len(r.OffvmS) == 1 {
				runs = "1 run"
			}
			fmt.Fprintf(&w, "| %s | | | %s (%s–%s) | | %s | %s | %s |\n", cell(r.Label), num(r.OffvmMedian, r.Unit), num(r.OffvmMin, ""), num(r.OffvmMax, r.Unit), runs, cpuCell(r), loadCell(r))
			continue
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %.2f (%.2f–%.2f) | %d | %s | %s |\n", cell(r.Label), cell(r.Peer), num(r.PeerMedian, r.Unit), num(r.OffvmMedian, r.Unit), r.Ratio, r.RatioMin, r.RatioMax, len(r.OffvmS), cpuCell(r), loadCell(r))
	}
	return w.String()
}

func num(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	}
	return fmt.Sprintf("%.3f%s", v, unit)
}

// rewriteReadme replaces what lies between the bench markers.
func rewriteReadme(path, table string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q ... %q section to rewrite", path, beginMark, endMark)
	}
	s = s[:i+len(beginMark)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// cpuCell is the CPU medians of a record, peer / offvm.
func cpuCell(r Record) string {
	switch {
	case len(r.OffvmCPU) == 0:
		return ""
	case len(r.PeerCPU) == 0:
		return fmt.Sprintf("%.2fs", r.OffvmCPUMed)
	}
	return fmt.Sprintf("%.2fs / %.2fs", r.PeerCPUMed, r.OffvmCPUMed)
}

func loadCell(r Record) string {
	if len(r.Load) == 0 {
		return ""
	}
	return loads(r.Load)
}
