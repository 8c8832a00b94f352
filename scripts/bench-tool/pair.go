package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// figure is one benchmark figure as the flags describe it.
type figure struct {
	id, label, peer, unit string
	roots                 [2]string // peer, offvm
	run                   [2]string
	setup, teardown       string
	verify, check, expect string
	pids                  string
	pairs, warmup         int
	cold, sameOutput      bool
	sameSize              bool
	paired                bool
}

// Record is one figure's timings, a line of runs.jsonl and an entry of
// bench.json.
type Record struct {
	ID         string    `json:"id"`
	Label      string    `json:"label"`
	Peer       string    `json:"peer,omitempty"`
	Unit       string    `json:"unit"`
	PeerS      []float64 `json:"peer_s,omitempty"`
	OffvmS     []float64 `json:"offvm_s"`
	BytesPeer  int64     `json:"bytes_peer,omitempty"`
	BytesOffvm int64     `json:"bytes_offvm"`
	Verified   string    `json:"verified,omitempty"`
	// CPU seconds of each run (cpu.go says what they count), and the
	// 1-minute load average before the first timed run and after the last.
	PeerCPU  []float64 `json:"peer_cpu_s,omitempty"`
	OffvmCPU []float64 `json:"offvm_cpu_s,omitempty"`
	Load     []float64 `json:"load,omitempty"`
	// Filled by report.
	PeerMedian  float64 `json:"peer_median,omitempty"`
	PeerCPUMed  float64 `json:"peer_cpu_median,omitempty"`
	OffvmCPUMed float64 `json:"offvm_cpu_median,omitempty"`
	OffvmMedian float64 `json:"offvm_median"`
	OffvmMin    float64 `json:"offvm_min"`
	OffvmMax    float64 `json:"offvm_max"`
	Ratio       float64 `json:"ratio_median,omitempty"`
	RatioMin    float64 `json:"ratio_min,omitempty"`
	RatioMax    float64 `json:"ratio_max,omitempty"`
}

const (
	peerSide  = 0
	offvmSide = 1
)

var sideNames = [2]string{"peer", "offvm"}

func parseFigure(args []string, paired bool) (*figure, string, error) {
	f := &figure{paired: paired}
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	out := fs.String("out", "runs.jsonl", "file the record is appended to")
	fs.StringVar(&f.id, "id", "", "figure id (stable across runs, for comparing bench.json files)")
	fs.StringVar(&f.label, "label", "", "what the figure measures")
	fs.StringVar(&f.peer, "peer", "", "the peer tool's name")
	fs.StringVar(&f.unit, "unit", "s", "unit of the times")
	fs.StringVar(&f.roots[peerSide], "ra", "", "the peer's root ($R)")
	fs.StringVar(&f.roots[offvmSide], "rb", "", "offvm's root ($R)")
	run := fs.String("run", "", "timed command, both sides")
	fs.StringVar(&f.run[peerSide], "run-a", "", "timed command of the peer (default -run)")
	fs.StringVar(&f.run[offvmSide], "run-b", "", "timed command of offvm (default -run)")
	fs.StringVar(&f.setup, "setup", "", "untimed, before each run")
	fs.StringVar(&f.teardown, "teardown", "", "untimed, after each run and its check")
	fs.StringVar(&f.verify, "verify", "", "untimed, after the warm-up: output must be the same on both sides, and not empty")
	fs.StringVar(&f.check, "check", "", "untimed, after every run (before teardown): output must be the same for every run of both sides")
	fs.StringVar(&f.expect, "expect", "", "untimed, once: what -verify or -check must print")
	fs.StringVar(&f.pids, "pids", "", "untimed, before each run: the pids of daemons serving the side that the run did not start (their CPU time counts)")
	fs.IntVar(&f.pairs, "pairs", 5, "timed pairs (runs in single mode)")
	fs.IntVar(&f.warmup, "warmup", 1, "untimed warm-up runs of each side")
	fs.BoolVar(&f.cold, "cold", false, "drop the page cache before every run")
	fs.BoolVar(&f.sameSize, "same-size", false, "the timed commands must print as many bytes")
	fs.BoolVar(&f.sameOutput, "same-output", false, "the timed commands must print the same bytes (checked by SHA-256 in the warm-up)")
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	for s := range f.run {
		if f.run[s] == "" {
			f.run[s] = *run
		}
	}
	if f.id == "" || f.run[offvmSide] == "" || (paired && f.run[peerSide] == "") {
		return nil, "", fmt.Errorf("pair: -id and -run are needed")
	}
	if f.pairs < 1 {
		f.pairs = 1
	}
	return f, *out, nil
}

func pairCmd(args []string, paired bool) error {
	f, out, err := parseFigure(args, paired)
	if err != nil {
		return err
	}
	becomeSubreaper()
	rec, err := f.measure()
	if err != nil {
		return fmt.Errorf("figure %s: %w", f.id, err)
	}
	summarize(rec)
	printRecord(os.Stdout, rec)
	return appendRecord(out, rec)
}

func (f *figure) sides() []int {
	if f.paired {
		return []int{peerSide, offvmSide}
	}
	return []int{offvmSide}
}

// measure warms each side up, checks they did the same work, then runs
// the timed pairs interleaved, alternating which side goes first so that
// neither always meets the cache or the disk in the state the other left.
func (f *figure) measure() (*Record, error) {
	rec := &Record{ID: f.id, Label: f.label, Unit: f.unit}
	if f.paired {
		rec.Peer = f.peer
	}
	want := ""
	if f.expect != "" {
		o, err := f.shell(f.expect, offvmSide, 0)
		if err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
		want = o
	}
	var sums [2]string
	var sizes [2]int64
	for w := 0; w < f.warmup; w++ {
		for _, s := range f.sides() {
			r, err := f.once(s, -1-w, true)
			if err != nil {
				return nil, err
			}
			sums[s], sizes[s] = r.sum, r.bytes
			if f.check == "" {
				continue
			}
			if want == "" {
				want = r.check
			} else if r.check != want {
				return nil, fmt.Errorf("%s warm-up: check printed %q, want %q", sideNames[s], short(r.check), short(want))
			}
		}
	}
	if err := f.verifySides(sums, sizes, want, rec); err != nil {
		return nil, err
	}
	rec.Load = append(rec.Load, loadAvg())
	for p := 0; p < f.pairs; p++ {
		order := f.sides()
		if p%2 == 1 && len(order) == 2 {
			order = []int{offvmSide, peerSide}
		}
		for _, s := range order {
			r, err := f.once(s, p, false)
			if err != nil {
				return nil, err
			}
			if f.warmup > 0 && r.bytes != sizes[s] {
				return nil, fmt.Errorf("%s run %d printed %d bytes, the warm-up %d", sideNames[s], p, r.bytes, sizes[s])
			}
			if f.check != "" && r.check != want {
				return nil, fmt.Errorf("%s run %d: check printed %q, want %q", sideNames[s], p, short(r.check), short(want))
			}
			if s == peerSide {
				rec.PeerS, rec.PeerCPU = append(rec.PeerS, r.secs), append(rec.PeerCPU, r.cpu)
			} else {
				rec.OffvmS, rec.OffvmCPU = append(rec.OffvmS, r.secs), append(rec.OffvmCPU, r.cpu)
			}
			sizes[s] = r.bytes
		}
	}
	rec.Load = append(rec.Load, loadAvg())
	rec.BytesPeer, rec.BytesOffvm = sizes[peerSide], sizes[offvmSide]
	if !f.paired {
		rec.BytesPeer = 0
	}
	return rec, nil
}

// verifySides checks, after the warm-up, that both sides did the same work.
func (f *figure) verifySides(sums [2]string, sizes [2]int64, want string, rec *Record) error {
	var how []string
	if f.sameOutput && f.paired {
		if sums[peerSide] != sums[offvmSide] || sizes[peerSide] != sizes[offvmSide] {
			return fmt.Errorf("the sides printed different bytes: peer %d bytes sha256 %s, offvm %d bytes sha256 %s",
				sizes[peerSide], sums[peerSide], sizes[offvmSide], sums[offvmSide])
		}
		how = append(how, fmt.Sprintf("same %d bytes read, sha256 %s", sizes[offvmSide], sums[offvmSide][:16]))
	}
	if f.sameSize && f.paired {
		if sizes[peerSide] != sizes[offvmSide] {
			return fmt.Errorf("the sides printed %d and %d bytes", sizes[peerSide], sizes[offvmSide])
		}
		how = append(how, fmt.Sprintf("same %d bytes printed", sizes[offvmSide]))
	}
	if f.verify != "" {
		var outs [2]string
		for _, s := range f.sides() {
			o, err := f.shell(f.verify, s, 0)
			if err != nil {
				return fmt.Errorf("verify %s: %w", sideNames[s], err)
			}
			if o == "" {
				return fmt.Errorf("verify %s printed nothing", sideNames[s])
			}
			outs[s] = o
		}
		if f.paired && outs[peerSide] != outs[offvmSide] {
			return fmt.Errorf("verify: peer printed %q, offvm %q", short(outs[peerSide]), short(outs[offvmSide]))
		}
		if want != "" && outs[offvmSide] != want {
			return fmt.Errorf("verify: offvm printed %q, want %q", short(outs[offvmSide]), short(want))
		}
		how = append(how, "verify: "+digest(outs[offvmSide]))
	}
	if f.check != "" {
		how = append(how, "check after every run: "+digest(want))
	}
	rec.Verified = join(how)
	return nil
}

type runResult struct {
	secs  float64
	cpu   float64 // seconds of CPU, see cpu.go
	bytes int64
	sum   string
	check string
}

// once runs one side once: setup, cache drop, the timed command, check
// and teardown.
func (f *figure) once(side, run int, hash bool) (runResult, error) {
	var r runResult
	began := bootTicks()
	if f.setup != "" {
		if _, err := f.shell(f.setup, side, run); err != nil {
			return r, fmt.Errorf("setup %s: %w", sideNames[side], err)
		}
	}
	if f.cold {
		if err := dropCaches(); err != nil {
			return r, err
		}
	}
	var daemons []int
	if f.pids != "" {
		o, err := f.shell(f.pids, side, run)
		if err != nil {
			return r, fmt.Errorf("pids %s: %w", sideNames[side], err)
		}
		daemons = parsePids(o)
	}
	reapOrphans() // what earlier runs left is not this run's
	daemonCPU := procCPU(daemons)
	cmd := f.command(f.run[side], side, run)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	h := sha256.New()
	var w io.Writer = io.Discard
	if hash {
		w = h
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	n, cerr := io.CopyBuffer(w, stdout, make([]byte, 1<<20))
	werr := cmd.Wait()
	r.secs = time.Since(start).Seconds()
	if cerr != nil || werr != nil {
		return r, fmt.Errorf("%s run %d of %q: %v %v", sideNames[side], run, f.run[side], cerr, werr)
	}
	r.cpu = cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds() + procCPU(daemons) - daemonCPU
	r.bytes, r.sum = n, hex.EncodeToString(h.Sum(nil))
	if f.check != "" {
		if r.check, err = f.shell(f.check, side, run); err != nil {
			return r, fmt.Errorf("check %s: %w", sideNames[side], err)
		}
		if r.check == "" {
			return r, fmt.Errorf("check %s run %d printed nothing", sideNames[side], run)
		}
	}
	if f.teardown != "" {
		if _, err := f.shell(f.teardown, side, run); err != nil {
			return r, fmt.Errorf("teardown %s: %w", sideNames[side], err)
		}
	}
	settle()
	r.cpu += reapRunOrphans(began, 30*time.Second)
	return r, nil
}

func (f *figure) command(script string, side, run int) *exec.Cmd {
	cmd := exec.Command("bash", "-c", "set -eo pipefail\n"+script)
	cmd.Env = append(os.Environ(), "R="+f.roots[side], "SIDE="+sideNames[side], "RUN="+strconv.Itoa(run))
	cmd.Stderr = os.Stderr
	return cmd
}

// shell runs an untimed command and returns what it printed.
func (f *figure) shell(script string, side, run int) (string, error) {
	cmd := f.command(script, side, run)
	var b bytes.Buffer
	cmd.Stdout = &b
	err := cmd.Run()
	return b.String(), err
}

func dropCaches() error {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop caches (needs root): %w", err)
	}
	return nil
}

func appendRecord(path string, rec *Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(append(b, '\n')); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%d bytes, sha256 %s", len(s), hex.EncodeToString(sum[:8]))
}

func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func join(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}
