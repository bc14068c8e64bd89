package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// chaosFlags is the configuration of netsvc-chaos.
type chaosFlags struct {
	bin       string
	nodes     int
	duration  time.Duration
	killEvery time.Duration
	maxDown   time.Duration
	rate      float64
	deadline  time.Duration
	grace     time.Duration
	settle    time.Duration
	seed      uint64
	logs      string
	json      bool
	rolling   bool
}

// register defines the flags of c in fs.
func (c *chaosFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bin, "bin", "", "run the nodes with the netsvc binary at `PATH` (default: netsvc on PATH)")
	fs.IntVar(&c.nodes, "nodes", 5, "how many server nodes to run (`N`, 3 or more)")
	fs.DurationVar(&c.duration, "duration", time.Minute, "how long to kill and restart nodes under load")
	fs.DurationVar(&c.killEvery, "kill-every", 3*time.Second, "how often to SIGKILL a random node (sometimes two)")
	fs.DurationVar(&c.maxDown, "max-down", 2*time.Second, "longest a killed node stays down before its restart (random, from 0)")
	fs.Float64Var(&c.rate, "rate", 10, "calls per second from each client to each other node")
	fs.DurationVar(&c.deadline, "deadline", 2*time.Second, "the deadline of each call")
	fs.DurationVar(&c.grace, "grace", time.Second, "how far past its deadline a call may end before it counts as hung")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "how long the cluster may take to settle after the last restart")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of the kill schedule and the calls (0: random, printed)")
	fs.StringVar(&c.logs, "logs", "", "keep the nodes' logs in `DIR` (default: a temporary directory, removed when all went well)")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&c.rolling, "rolling", false, "instead of killing nodes, drain (SIGTERM) and restart each in turn, calling math by name; every call must succeed")
}

func (c *chaosFlags) validate() error {
	switch {
	case c.nodes < 3:
		return fmt.Errorf("--nodes must be 3 or more, got %d", c.nodes)
	case c.nodes > 20:
		return fmt.Errorf("--nodes must be 20 or fewer, got %d", c.nodes)
	case c.duration <= 0:
		return fmt.Errorf("--duration must be positive, got %v", c.duration)
	case c.killEvery <= 0:
		return fmt.Errorf("--kill-every must be positive, got %v", c.killEvery)
	case c.maxDown < 0:
		return fmt.Errorf("--max-down must not be negative, got %v", c.maxDown)
	case c.rate <= 0 || c.rate > 1000:
		return fmt.Errorf("--rate must be in (0, 1000], got %v", c.rate)
	case c.deadline <= 0:
		return fmt.Errorf("--deadline must be positive, got %v", c.deadline)
	case c.grace < 0:
		return fmt.Errorf("--grace must not be negative, got %v", c.grace)
	case c.settle <= 0:
		return fmt.Errorf("--settle must be positive, got %v", c.settle)
	}
	return nil
}

func runChaos(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	bin, version, err := netsvcBinary(ctx, cfg.bin)
	if err != nil {
		return env.usageError("%v", err)
	}
	cfg.bin = bin
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	logDir, keepLogs := cfg.logs, cfg.logs != ""
	if logDir == "" {
		d, err := os.MkdirTemp("", "netsvc-chaos-")
		if err != nil {
			return env.fail(err)
		}
		logDir = d
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return env.fail(err)
	}
	r := &chaosRun{cfg: cfg, progress: env.stderr, logDir: logDir, version: version,
		rng:    rand.New(rand.NewPCG(cfg.seed, 0x6b696c6c)), // "kill"
		http:   &http.Client{Timeout: 2 * time.Second},
		stalls: startStallMonitor()}
	r.calls = newCallBook(r.stalls)
	sum := r.run(ctx)
	r.stalls.stop()
	if len(sum.Problems) > 0 {
		keepLogs = true
	}
	if keepLogs {
		sum.Logs = logDir
		if f, err := os.Create(filepath.Join(logDir, "summary.txt")); err == nil {
			sum.print(f)
			f.Close()
		}
	} else {
		os.RemoveAll(logDir)
	}
	if cfg.json {
		b, _ := json.MarshalIndent(sum, "", "  ")
		fmt.Fprintf(env.stdout, "%s\n", b)
	} else {
		sum.print(env.stdout)
	}
	if len(sum.Problems) > 0 {
		return exitFailure
	}
	return exitOK
}

// netsvcBinary finds the netsvc binary to run the nodes with: bin as
// exec finds it, or without bin the netsvc on PATH. It checks that it is
// one by its "version" line, which it returns, so a run does not start
// nodes that cannot start (and the progress tells which build runs).
func netsvcBinary(ctx context.Context, bin string) (path, version string, err error) {
	if bin == "" {
		if path, err = exec.LookPath("netsvc"); err != nil {
			return "", "", errors.New("no netsvc binary on PATH to run the nodes with: build one with 'go build -o netsvc ./cmd/netsvc' and pass --bin ./netsvc")
		}
	} else if path, err = exec.LookPath(bin); err != nil {
		return "", "", fmt.Errorf("--bin %s: %v", bin, errors.Unwrap(err))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if v := strings.TrimSpace(string(out)); err == nil && strings.HasPrefix(v, "netsvc ") {
		return path, v, nil
	}
	said := fmt.Sprintf("printed %q", oneLine(string(out)))
	if err != nil {
		said = "failed: " + err.Error()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
			first, _, _ := strings.Cut(strings.TrimSpace(string(ee.Stderr)), "\n")
			said += ": " + first
		}
	}
	return "", "", fmt.Errorf("%s is not a netsvc binary (its \"version\" %s); build one with 'go build -o netsvc ./cmd/netsvc'", path, said)
}

// chaosRun is one run of the chaos command.
type chaosRun struct {
	cfg      *chaosFlags
	progress io.Writer // a line per kill and restart
	version  string    // of the netsvc binary the nodes run
	logDir   string
	rng      *rand.Rand // the killer's: which nodes, how long down
	http     *http.Client
	begin    time.Time

	nodes     []*chaosNode
	clients   []*node.Node
	clientLog *os.File
	calls     *callBook
	stalls    *stallMonitor

	mu       sync.Mutex
	kills    []killEvent
	drains   int
	restarts int
	problems []string
}

// chaosNode is one server node: its name and ports stay, its process
// changes with every restart.
type chaosNode struct {
	i                       int
	name                    string
	listen, gossip, console string
	log                     *os.File

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	killed  bool          // by the killer: not an unexpected exit
	process service.ProcessID
	starts  int
}

// killEvent is one SIGKILL.
type killEvent struct {
	node    int
	at      time.Time
	process service.ProcessID
}

func (r *chaosRun) logf(format string, args ...any) {
	fmt.Fprintf(r.progress, "chaos %6.2fs: %s\n", time.Since(r.begin).Seconds(), fmt.Sprintf(format, args...))
}

func (r *chaosRun) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.problems = append(r.problems, msg)
	r.mu.Unlock()
	r.logf("PROBLEM: %s", msg)
}

// run does the whole run and returns its summary.
func (r *chaosRun) run(ctx context.Context) *chaosSummary {
	cfg := r.cfg
	r.begin = time.Now()
	r.logf("seed %d, %d nodes, %v, logs in %s", cfg.seed, cfg.nodes, cfg.duration, r.logDir)
	r.logf("nodes run %s: %s", cfg.bin, r.version)
	sum := &chaosSummary{Seed: cfg.seed, Nodes: cfg.nodes, Duration: cfg.duration.String(), Rate: cfg.rate,
		Deadline: cfg.deadline.String(), Failed: map[string]uint64{}}
	defer r.stopAll()
	if err := r.setUp(ctx); err != nil {
		r.problem("set-up: %v", err)
		return r.summarize(sum)
	}

	// The load and the killer run for the duration.
	stopLoad := make(chan struct{})
	var streams sync.WaitGroup
	for i := range r.clients {
		for j := range r.nodes {
			if i != j {
				streams.Add(1)
				go func() {
					defer streams.Done()
					r.stream(i, j, stopLoad)
				}()
			}
		}
	}
	var killerErr error
	if cfg.rolling {
		killerErr = r.roller(ctx, time.Now().Add(cfg.duration))
	} else {
		killerErr = r.killer(ctx, time.Now().Add(cfg.duration))
	}
	close(stopLoad)
	streams.Wait()
	r.logf("load stopped; waiting for the calls in flight")
	if n := r.calls.wait(cfg.deadline + cfg.grace + time.Second); n > 0 {
		r.problem("%d calls never ended", n)
	}
	if killerErr != nil {
		r.problem("%v", killerErr)
		return r.summarize(sum)
	}
	if ctx.Err() != nil {
		r.problem("interrupted")
		return r.summarize(sum)
	}

	// The cluster settles: every service once everywhere, one link per pair.
	settleStart := time.Now()
	if err := r.waitSettled(ctx, cfg.settle); err != nil {
		r.problem("the cluster did not settle within %v: %v", cfg.settle, err)
	} else {
		sum.Settled = time.Since(settleStart).Round(time.Millisecond).String()
		r.logf("settled after %s", sum.Settled)
		if err := r.finalRound(); err != nil {
			r.problem("after settling: %v", err)
		}
	}
	sum.LogErrors = r.checkLogs()
	return r.summarize(sum)
}

// chaosSummary is what a run did, as printed.
type chaosSummary struct {
	Seed     uint64  `json:"seed"`
	Nodes    int     `json:"nodes"`
	Duration string  `json:"duration"`
	Rate     float64 `json:"rate"`
	Deadline string  `json:"deadline"`

	Kills    int `json:"kills"`    // processes killed
	Drains   int `json:"drains"`   // processes drained (--rolling)
	Restarts int `json:"restarts"` // processes restarted

	Sent     uint64            `json:"sent"`
	Answered uint64            `json:"answered"`
	Failed   map[string]uint64 `json:"failed"` // by "CODE description"
	Timeouts uint64            `json:"timeouts"`
	// TimeoutsNearKill counts the timeouts of calls whose target node or
	// whose client's node was killed while they were under way.
	TimeoutsNearKill uint64   `json:"timeouts_near_kill"`
	TimeoutSamples   []string `json:"timeout_samples,omitempty"`
	Hung             int      `json:"hung"` // ended past deadline + grace
	// Late counts calls that ended past deadline + grace only because
	// this process stalled meanwhile; MaxStall is its longest stall.
	Late     int    `json:"late"`
	MaxStall string `json:"max_stall"`
	Lost     int    `json:"lost"` // never ended
	Wrong    int    `json:"wrong"`
	MaxCall  string `json:"max_call"`
	Settled  string `json:"settled,omitempty"` // how long the cluster took to settle
	// LogErrors counts the nodes' error lines by message (not a failure).
	LogErrors map[string]int `json:"log_errors,omitempty"`
	Problems  []string       `json:"problems"`
	Logs      string         `json:"logs,omitempty"`
}

func (r *chaosRun) summarize(s *chaosSummary) *chaosSummary {
	b := r.calls
	b.mu.Lock()
	s.Sent, s.Answered = b.sent, b.answered
	var codes []service.Code
	for c := range b.failed {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		desc := c.String()
		if c == -1 {
			desc = "not a failure"
		}
		s.Failed[fmt.Sprintf("%d %s", c, desc)] = b.failed[c]
	}
	s.Timeouts = b.failed[service.CodeTimedOut]
	s.Hung, s.Late, s.Lost, s.Wrong = len(b.hung), b.late, len(b.inflight), len(b.wrong)
	s.MaxStall = b.stalls.longest().Round(time.Millisecond).String()
	s.MaxCall = b.maxDur.Round(time.Millisecond).String()
	timeouts, hung, wrong := b.timeouts, b.hung, b.wrong
	b.mu.Unlock()

	r.mu.Lock()
	kills := append([]killEvent(nil), r.kills...)
	s.Kills, s.Drains, s.Restarts = len(r.kills), r.drains, r.restarts
	problems := append([]string(nil), r.problems...)
	r.mu.Unlock()
	for _, rec := range timeouts {
		k, near := r.nearestKill(kills, rec)
		if near {
			s.TimeoutsNearKill++
		}
		if len(s.TimeoutSamples) < 20 {
			s.TimeoutSamples = append(s.TimeoutSamples, r.describe(rec, k, near))
		}
	}
	if len(hung) > 0 {
		k, near := r.nearestKill(kills, hung[0])
		problems = append(problems, fmt.Sprintf("%d calls ended more than %v past their deadline, the first: %s",
			len(hung), r.cfg.grace, r.describe(hung[0], k, near)))
	}
	if len(wrong) > 0 {
		problems = append(problems, fmt.Sprintf("%d wrong answers, the first: %s", len(wrong), wrong[0]))
	}
	if s.Sent > 0 && s.Answered == 0 {
		problems = append(problems, "no call was answered")
	}
	if r.cfg.rolling && s.Answered != s.Sent {
		// A drain lets nothing fail: calls move to the other replicas.
		problems = append(problems, fmt.Sprintf("%d of %d calls failed during a rolling restart: %v", s.Sent-s.Answered, s.Sent, s.Failed))
	}
	s.Problems = problems
	return s
}

// nearestKill finds the kill of the call's target node or of its
// client's node closest to the call, and whether it happened while the
// call was under way (or just before it started).
func (r *chaosRun) nearestKill(kills []killEvent, rec *callRecord) (killEvent, bool) {
	var best killEvent
	bestGap := time.Duration(1<<63 - 1)
	for _, k := range kills {
		if k.node != rec.target && k.node != rec.client {
			continue
		}
		gap := max(rec.start.Sub(k.at), k.at.Sub(rec.end), 0)
		if gap < bestGap {
			best, bestGap = k, gap
		}
	}
	return best, bestGap <= r.cfg.maxDown+time.Second
}

func (r *chaosRun) describe(rec *callRecord, k killEvent, near bool) string {
	s := fmt.Sprintf("client of %s -> %s.%s at %.3fs took %v (code %d: %s)", r.nodes[rec.client].name, r.nodes[rec.target].name,
		rec.method, rec.start.Sub(r.begin).Seconds(), rec.end.Sub(rec.start).Round(time.Millisecond), rec.code, rec.details)
	if near {
		s += fmt.Sprintf("; %s killed at %.3fs", r.nodes[k.node].name, k.at.Sub(r.begin).Seconds())
	} else {
		s += "; no kill of either node nearby"
	}
	if st := r.stalls.during(rec.start, rec.end); st > 0 {
		s += fmt.Sprintf("; this process stalled %v meanwhile", st.Round(time.Millisecond))
	}
	return s
}

func (s *chaosSummary) print(w io.Writer) {
	fmt.Fprintf(w, "netsvc-chaos: seed %d, %d nodes, %s, %g calls/s per client and node, deadline %s\n",
		s.Seed, s.Nodes, s.Duration, s.Rate, s.Deadline)
	fmt.Fprintf(w, "kills      %d, drains %d (restarts %d)\n", s.Kills, s.Drains, s.Restarts)
	fmt.Fprintf(w, "sent       %d\n", s.Sent)
	fmt.Fprintf(w, "answered   %d\n", s.Answered)
	var failed uint64
	var keys []string
	for k, v := range s.Failed {
		failed += v
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.Fields(keys[i])[0])
		b, _ := strconv.Atoi(strings.Fields(keys[j])[0])
		return a < b
	})
	fmt.Fprintf(w, "failed     %d\n", failed)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-36s %d\n", k, s.Failed[k])
	}
	fmt.Fprintf(w, "timeouts   %d (%d while the target's or the client's node was killed)\n", s.Timeouts, s.TimeoutsNearKill)
	for _, t := range s.TimeoutSamples {
		fmt.Fprintf(w, "  %s\n", t)
	}
	fmt.Fprintf(w, "hung       %d\n", s.Hung)
	fmt.Fprintf(w, "late       %d (past the deadline only as long as this process stalled; longest stall %s)\n", s.Late, s.MaxStall)
	fmt.Fprintf(w, "lost       %d\n", s.Lost)
	fmt.Fprintf(w, "wrong      %d\n", s.Wrong)
	fmt.Fprintf(w, "max call   %s\n", s.MaxCall)
	if s.Settled != "" {
		fmt.Fprintf(w, "settled    after %s: every service once everywhere, one link per pair\n", s.Settled)
	}
	if len(s.LogErrors) > 0 {
		fmt.Fprintln(w, "errors logged by the nodes:")
		msgs := make([]string, 0, len(s.LogErrors))
		for m := range s.LogErrors {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(w, "  %5d %s\n", s.LogErrors[m], m)
		}
	}
	if s.Logs != "" {
		fmt.Fprintf(w, "logs       %s\n", s.Logs)
	}
	if len(s.Problems) == 0 {
		fmt.Fprintln(w, "result     ok")
		return
	}
	fmt.Fprintf(w, "result     FAILED (%d problems)\n", len(s.Problems))
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
