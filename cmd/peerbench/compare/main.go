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
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
