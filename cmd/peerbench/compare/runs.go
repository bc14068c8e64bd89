package main

// Running the peers round after round and reading their JSON lines.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

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
