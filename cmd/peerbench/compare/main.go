// Command compare holds `netsvc bench` against the floor (./rawtcp) and the
// peer (./nats) in one go, so that nobody has to run, alternate and tally
// the three benchmarks by hand.
//
// It builds each binary once, then, for every size and mode, runs the peers
// one after the other, round after round (netsvc, rawtcp, nats; netsvc,
// rawtcp, nats; …), so that the noise of a shared machine spreads evenly
// over all of them. It prints a Markdown table of the medians over the
// rounds and of the ratios between them.
//
// From this folder:
//
//	go run ./compare                              # rr, rrpar, pub; 5 rounds of 3s
//	go run ./compare --sizes 100,1000 --rounds 3
//	go run ./compare --peers netsvc,rawtcp        # without NATS
//	go run ./compare --netsvc /tmp/netsvc-before  # a prebuilt netsvc
//
// It uses nothing but the standard library.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	peerbenchModule = "github.com/netsvc-go/netsvc/cmd/peerbench"
	rootModule      = "github.com/netsvc-go/netsvc"

	runSlack     = 60 * time.Second // added to --duration to bound each run
	buildTimeout = 10 * time.Minute // the first NATS build compiles a lot
	stopGrace    = 5 * time.Second  // between the interrupt and the kill
)

// knownPeers are the peers compare can run, in their default order.
var knownPeers = []string{"netsvc", "rawtcp", "nats"}

// knownModes are the benchmark modes all three commands understand.
var knownModes = []string{"rr", "rrpar", "pub"}

// labels name the peers in the table by their role, not their directory.
var labels = map[string]string{"netsvc": "netsvc", "rawtcp": "floor", "nats": "NATS"}

// config is what the flags ask for.
type config struct {
	peerbenchDir string
	rootDir      string
	prebuilt     map[string]string // peer → binary given by --netsvc, --rawtcp, --nats
	modes        []string
	sizes        []int
	peers        []string
	rounds       int
	inflight     int
	duration     time.Duration
	json         bool
}

// result holds the numeric keys of one run's JSON line.
type result map[string]float64

// sample gathers the runs of one peer for one (mode, size).
type sample struct {
	runs    []result
	missing int
}

// key identifies one row of the table.
type key struct {
	mode string
	size int
}

// results holds every sample, by row and then by peer.
type results map[key]map[string]*sample

func main() { os.Exit(run(os.Args[1:])) }

// run is main with an exit code, so that deferred clean-ups (the temporary
// directory, the signal handler) run before the process exits.
func run(args []string) int {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "peerbench-compare-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins, err := buildAll(ctx, cfg, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	header := headerLine(cfg)
	res := runAll(ctx, cfg, bins)
	printReport(os.Stdout, header, cfg, res)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "compare: interrupted; the table holds the runs that finished")
		return 130
	}
	return 0
}

// parseFlags reads and checks the flags, so that a typo fails at once rather
// than after minutes of benchmarks.
func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	cfg := &config{prebuilt: map[string]string{}}
	modes := fs.String("modes", "rr,rrpar,pub", "comma-separated `modes`: rr, rrpar, pub")
	sizes := fs.String("sizes", "100", "comma-separated payload `sizes` in bytes")
	peers := fs.String("peers", strings.Join(knownPeers, ","), "comma-separated `peers`: netsvc, rawtcp, nats")
	fs.IntVar(&cfg.rounds, "rounds", 5, "runs of each peer per mode and size")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long each run measures")
	fs.IntVar(&cfg.inflight, "inflight", 64, "requests in flight for rrpar")
	fs.BoolVar(&cfg.json, "json", false, "also print each run's raw JSON line")
	fs.StringVar(&cfg.peerbenchDir, "peerbench", "", "the peerbench module's `dir` (default: found from the working directory)")
	fs.StringVar(&cfg.rootDir, "root", "", "the netsvc module's `dir` (default: two levels above the peerbench dir)")
	for _, p := range knownPeers {
		fs.Func(p, "use the prebuilt "+p+" binary at `path` instead of building it", func(s string) error {
			cfg.prebuilt[p] = s
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.setLists(*modes, *sizes, *peers); err != nil {
		return nil, err
	}
	return cfg, cfg.check()
}

// setLists splits and checks the comma-separated flags.
func (c *config) setLists(modes, sizes, peers string) error {
	c.modes, c.peers = splitList(modes), splitList(peers)
	if err := checkNames("mode", c.modes, knownModes); err != nil {
		return err
	}
	if err := checkNames("peer", c.peers, knownPeers); err != nil {
		return err
	}
	for _, s := range splitList(sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("--sizes: %q is not a positive integer", s)
		}
		c.sizes = append(c.sizes, n)
	}
	if len(c.sizes) == 0 {
		return errors.New("--sizes: no size given")
	}
	return nil
}

// check rejects the numbers no run could use.
func (c *config) check() error {
	if c.rounds <= 0 || c.inflight <= 0 || c.duration <= 0 {
		return errors.New("--rounds, --inflight and --duration must be positive")
	}
	for p := range c.prebuilt {
		if !slices.Contains(c.peers, p) {
			return fmt.Errorf("--%s given but %s is not in --peers", p, p)
		}
	}
	return nil
}

// splitList splits a comma-separated flag, dropping blanks so that a
// trailing comma is harmless.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkNames accepts a non-empty list of known, distinct names: a repeated
// peer would only skew the alternation.
func checkNames(what string, names, known []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no %s given", what)
	}
	for i, n := range names {
		if !slices.Contains(known, n) {
			return fmt.Errorf("unknown %s %q: want one of %s", what, n, strings.Join(known, ", "))
		}
		if slices.Contains(names[:i], n) {
			return fmt.Errorf("%s %q given twice", what, n)
		}
	}
	return nil
}

// buildAll builds, once, every binary that was not given prebuilt, so that
// the runs measure the benchmarks and not the compiler.
func buildAll(ctx context.Context, cfg *config, dir string) (map[string]string, error) {
	if err := locateDirs(cfg); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, p := range cfg.peers {
		if path, ok := cfg.prebuilt[p]; ok {
			abs, err := exec.LookPath(path)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", p, err)
			}
			bins[p] = abs
			continue
		}
		bins[p] = filepath.Join(dir, p)
		fmt.Fprintf(os.Stderr, "building %s …\n", p)
		if err := build(ctx, cfg, p, bins[p]); err != nil {
			return nil, fmt.Errorf("building %s: %w", p, err)
		}
	}
	return bins, nil
}

// build runs the go build of one peer under a time bound: netsvc lives in
// the root module, the other two in the peerbench module. The error carries
// the compiler's output, which is where it says what went wrong.
func build(ctx context.Context, cfg *config, peer, out string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := command(ctx, "go", "build", "-o", out, "./"+peer)
	cmd.Dir = cfg.peerbenchDir
	if peer == "netsvc" {
		cmd = command(ctx, "go", "build", "-C", cfg.rootDir, "-o", out, "./cmd/netsvc")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// command is exec.CommandContext with a gentle stop: an interrupt first, so
// that a benchmark can shut its servers down, then a kill after stopGrace.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopGrace
	return cmd
}

// locateDirs finds the two modules' directories, but insists on them only
// when something has to be built from them.
func locateDirs(cfg *config) error {
	var needPeerbench, needRoot bool
	for _, p := range cfg.peers {
		if _, ok := cfg.prebuilt[p]; !ok {
			needRoot = needRoot || p == "netsvc"
			needPeerbench = needPeerbench || p != "netsvc"
		}
	}
	if !needPeerbench && !needRoot {
		return nil
	}
	if cfg.peerbenchDir == "" {
		cfg.peerbenchDir = findPeerbench(cfg.rootDir)
	}
	if cfg.rootDir == "" && cfg.peerbenchDir != "" {
		cfg.rootDir = filepath.Join(cfg.peerbenchDir, "..", "..")
	}
	if needPeerbench {
		if err := checkModule("--peerbench", &cfg.peerbenchDir, peerbenchModule); err != nil {
			return err
		}
	}
	if needRoot {
		return checkModule("--root", &cfg.rootDir, rootModule)
	}
	return nil
}

// findPeerbench guesses the peerbench directory: the working directory
// (go run ./compare from cmd/peerbench), else cmd/peerbench under it or
// under --root. It returns "" when no guess holds the module.
func findPeerbench(root string) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	candidates := []string{wd, filepath.Join(wd, "cmd", "peerbench")}
	if root != "" {
		candidates = append(candidates, filepath.Join(root, "cmd", "peerbench"))
	}
	for _, dir := range candidates {
		if hasModule(dir, peerbenchModule) {
			return dir
		}
	}
	return ""
}

// checkModule makes *dir absolute and makes sure it holds module mod, so
// that a wrong directory fails with a clear message instead of a go build
// error about some other package.
func checkModule(flagName string, dir *string, mod string) error {
	if *dir == "" {
		return fmt.Errorf("cannot find module %s: run from cmd/peerbench or pass %s", mod, flagName)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if !hasModule(abs, mod) {
		return fmt.Errorf("%s: %s does not hold module %s", flagName, abs, mod)
	}
	*dir = abs
	return nil
}

// hasModule reports whether dir/go.mod declares module mod.
func hasModule(dir, mod string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == mod
		}
	}
	return false
}

// runAll runs every (size, mode, round, peer), peers innermost so that each
// round alternates them. It stops early, keeping what it has, on Ctrl-C.
func runAll(ctx context.Context, cfg *config, bins map[string]string) results {
	res := results{}
	for _, size := range cfg.sizes {
		for _, mode := range cfg.modes {
			k := key{mode, size}
			res[k] = map[string]*sample{}
			for _, p := range cfg.peers {
				res[k][p] = &sample{}
			}
			for round := 1; round <= cfg.rounds; round++ {
				for _, p := range cfg.peers {
					if ctx.Err() != nil {
						return res
					}
					runPeer(ctx, cfg, bins[p], p, k, round, res[k][p])
				}
			}
		}
	}
	return res
}

// runPeer runs one benchmark and files its result, or reports why there is
// none: a failed run is counted as missing, never silently dropped.
func runPeer(ctx context.Context, cfg *config, bin, peer string, k key, round int, s *sample) {
	what := fmt.Sprintf("[%d/%d] %s %d B %s", round, cfg.rounds, k.mode, k.size, peer)
	raw, r, err := runOnce(ctx, bin, runArgs(cfg, peer, k), cfg.duration+runSlack)
	if ctx.Err() != nil {
		return // interrupted: neither a result nor a failure
	}
	if err != nil {
		s.missing++
		fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", what, err)
		return
	}
	s.runs = append(s.runs, r)
	if cfg.json {
		fmt.Println(raw)
	}
	fmt.Fprintf(os.Stderr, "%s: %s/s\n", what, thousands(r[rateKey(k.mode)]))
}

// runArgs are the flags for one run: netsvc takes a subcommand, double
// dashes and --json; the two peer commands print JSON anyway.
func runArgs(cfg *config, peer string, k key) []string {
	var args []string
	dash := "-"
	if peer == "netsvc" {
		args, dash = []string{"bench", "--json"}, "--"
	}
	return append(args,
		dash+"mode", k.mode,
		dash+"duration", cfg.duration.String(),
		dash+"size", strconv.Itoa(k.size),
		dash+"inflight", strconv.Itoa(cfg.inflight))
}

// runOnce runs one benchmark under timeout and parses its JSON line. Its
// error carries the run's output, the only clue to why it failed.
func runOnce(ctx context.Context, bin string, args []string, timeout time.Duration) (string, result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := command(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v", timeout)
	}
	var raw string
	var r result
	if err == nil {
		raw, r, err = parseResult(stdout.Bytes())
	}
	if err != nil {
		return "", nil, fmt.Errorf("%w\n--- stdout:\n%s--- stderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return raw, r, nil
}

// parseResult takes the last JSON object line of out, so that a log line
// printed before it does not spoil the run, and keeps its numeric keys.
func parseResult(out []byte) (string, result, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return "", nil, fmt.Errorf("unparsable output: %w", err)
		}
		r := result{}
		for k, v := range m {
			if f, ok := v.(float64); ok {
				r[k] = f
			}
		}
		if r["p50_us"] > 0 && r["p99_us"] > 0 {
			// Each run's own tail: the median of these is steadier than
			// one made of medians p99 and p50 from different runs.
			r[tailKey] = r["p99_us"] / r["p50_us"]
		}
		return line, r, nil
	}
	return "", nil, errors.New("no JSON line in the output")
}

// rateKey is the key that measures throughput in mode: a request for
// request/reply, a delivered message for publish/subscribe.
func rateKey(mode string) string {
	if mode == "pub" {
		return "received_per_s"
	}
	return "requests_per_s"
}

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
