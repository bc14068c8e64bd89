package main

// The Markdown table: medians, ratios, tails, and the runs that failed.

import (
	"context"
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// headerLine records what the figures depend on, so that two tables can be
// told apart later. It asks the go command, which built the binaries.
func headerLine(cfg *config) string {
	version := runtime.Version()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s · %s · GOMAXPROCS %d / NumCPU %d · rounds %d × %v · inflight %d",
		time.Now().Format("2006-01-02 15:04 MST"), version, runtime.GOMAXPROCS(0), runtime.NumCPU(),
		cfg.rounds, cfg.duration, cfg.inflight)
}

// printReport prints the header, the table and the runs that are missing
// from it.
func printReport(w io.Writer, header string, cfg *config, res results) {
	fmt.Fprintf(w, "\n%s\n\n", header)
	cols := columns(cfg.peers)
	fmt.Fprintf(w, "| mode | size | %s |\n", strings.Join(titles(cols), " | "))
	fmt.Fprintf(w, "|---|---:|%s\n", strings.Repeat("---:|", len(cols)))
	for _, size := range cfg.sizes {
		for _, mode := range cfg.modes {
			row(w, cols, key{mode, size}, res)
		}
	}
	fmt.Fprintln(w, "\nRates are medians over the rounds, in requests/s (rr, rrpar) or received/s (pub);")
	fmt.Fprintln(w, "latencies are medians of each run's p50/p99/p999, in µs; tail is the median of each run's p99/p50.")
	printMissing(w, cfg, res)
}

// column is one column of the table after mode and size: its title and how
// to fill it from a row's samples.
type column struct {
	title string
	cell  func(k key, s map[string]*sample) string
}

// columns picks the columns the chosen peers can fill: ratios and latencies
// need netsvc and the peer they compare it with.
func columns(peers []string) []column {
	var cols []column
	for _, p := range peers {
		cols = append(cols, column{labels[p] + " /s", rateCell(p)})
	}
	has := func(p string) bool { return slices.Contains(peers, p) }
	if has("netsvc") && has("rawtcp") {
		cols = append(cols, column{"netsvc/floor", ratioCell("rawtcp")})
	}
	if has("netsvc") && has("nats") {
		cols = append(cols, column{"netsvc/NATS", ratioCell("nats")})
	}
	for _, p := range []string{"netsvc", "rawtcp"} {
		if has(p) {
			cols = append(cols, column{labels[p] + " p50 / p99 / p999 µs", latencyCell(p)})
		}
	}
	for _, p := range []string{"netsvc", "rawtcp"} {
		if has(p) {
			cols = append(cols, column{labels[p] + " tail", tailCell(p)})
		}
	}
	if has("netsvc") && has("rawtcp") {
		cols = append(cols, column{"tail netsvc/floor", tailRatioCell})
	}
	return cols
}

// titles lists the columns' titles.
func titles(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.title
	}
	return out
}

// row prints one (mode, size) line of the table.
func row(w io.Writer, cols []column, k key, res results) {
	s, ok := res[k]
	if !ok {
		return // never reached before an interrupt
	}
	cells := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = c.cell(k, s)
	}
	fmt.Fprintf(w, "| %s | %s | %s |\n", k.mode, thousands(float64(k.size)), strings.Join(cells, " | "))
}

// rateCell fills a peer's median rate.
func rateCell(peer string) func(key, map[string]*sample) string {
	return func(k key, s map[string]*sample) string {
		v, ok := s[peer].median(rateKey(k.mode))
		return orDash(ok, thousands(v))
	}
}

// ratioCell fills netsvc's median rate over the other peer's: ratios of
// medians travel better between machines than the rates themselves.
func ratioCell(other string) func(key, map[string]*sample) string {
	return func(k key, s map[string]*sample) string {
		a, okA := s["netsvc"].median(rateKey(k.mode))
		b, okB := s[other].median(rateKey(k.mode))
		return orDash(okA && okB && b > 0, fmt.Sprintf("%.2f", a/b))
	}
}

// latencyCell fills a peer's median p50, p99 and p999, or a dash when it
// has none (pub, or no run that succeeded).
func latencyCell(peer string) func(key, map[string]*sample) string {
	return func(k key, s map[string]*sample) string {
		var parts []string
		for _, q := range []string{"p50_us", "p99_us", "p999_us"} {
			if v, ok := s[peer].median(q); ok {
				parts = append(parts, thousands(v))
			}
		}
		return orDash(k.mode != "pub" && len(parts) == 3, strings.Join(parts, " / "))
	}
}

// tailKey is the metric parseResult derives from each run: its p99/p50.
const tailKey = "tail"

// tailCell fills a peer's tail, the median of its runs' p99/p50: how far
// the slow requests stray from the typical one, whatever the machine's
// speed.
func tailCell(peer string) func(key, map[string]*sample) string {
	return func(k key, s map[string]*sample) string {
		v, ok := s[peer].median(tailKey)
		return orDash(k.mode != "pub" && ok, fmt.Sprintf("%.2f", v))
	}
}

// tailRatioCell fills netsvc's tail over the floor's: the latency target
// (within 1.5× at 64 in flight) reads it directly.
func tailRatioCell(k key, s map[string]*sample) string {
	a, okA := s["netsvc"].median(tailKey)
	b, okB := s["rawtcp"].median(tailKey)
	return orDash(k.mode != "pub" && okA && okB && b > 0, fmt.Sprintf("%.2f", a/b))
}

// printMissing lists the failed runs under the table, since a median over
// fewer runs than asked for deserves less trust.
func printMissing(w io.Writer, cfg *config, res results) {
	sep := "\n"
	for _, size := range cfg.sizes {
		for _, mode := range cfg.modes {
			for _, p := range cfg.peers {
				s := res[key{mode, size}][p]
				if s == nil || s.missing == 0 {
					continue
				}
				fmt.Fprintf(w, "%s- missing: %s %d B %s: %d of %d runs failed\n",
					sep, mode, size, p, s.missing, s.missing+len(s.runs))
				sep = ""
			}
		}
	}
}

// median is the median of metric over the runs that reported it; false
// when none did.
func (s *sample) median(metric string) (float64, bool) {
	var vals []float64
	for _, r := range s.runs {
		if v, ok := r[metric]; ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2], true
	}
	return (vals[n/2-1] + vals[n/2]) / 2, true
}

// orDash returns s, or a dash when there is nothing to show.
func orDash(ok bool, s string) string {
	if !ok {
		return "–"
	}
	return s
}

// thousands rounds v and groups its digits by three (123,456), which keeps
// six- and seven-digit rates readable.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}
