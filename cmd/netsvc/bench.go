package main

// "netsvc bench": its flags and the table it prints; the topology is in
// benchtopology.go.

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

type benchFlags struct {
	settings // --token, --token-file, NETSVC_TOKEN, with --server
	servers  listFlag
	token    settingValue
	mode     string
	duration time.Duration
	json     bool
	size     int
	inflight int
}

func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "run the benchmark in the peer topology (three TCP hops each way, one process)",
		usage:   "--mode rr|rrpar|pub [--duration D] [--size N] [--inflight N] [--server HOST:PORT ...] [--json]",
		flags: func(fs *flag.FlagSet) any {
			c := &benchFlags{}
			fs.StringVar(&c.mode, "mode", "rr", "`MODE`: rr (one request at a time), rrpar (--inflight at a time) or pub (publish/subscribe)")
			fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long to measure")
			fs.BoolVar(&c.json, "json", false, "print one JSON object with the peer benchmark's keys")
			fs.IntVar(&c.size, "size", 100, "payload size in bytes")
			fs.IntVar(&c.inflight, "inflight", 64, "requests in flight for rrpar")
			fs.Var(&c.servers, "server", "load a running cluster at `HOST:PORT` instead of a topology of its own: the caller links to the first --server, the service to the last (repeatable)")
			c.bind(fs, &c.token, tokenSetting, "", "with --server: the cluster's auth `TOKEN`")
			return c
		},
		run: runBench,
	}
}

func runBench(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*benchFlags)
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	switch cfg.mode {
	case "rr", "rrpar", "pub":
	default:
		return env.usageError("--mode %q: want rr, rrpar or pub", cfg.mode)
	}
	if cfg.duration <= 0 || cfg.size <= 0 || cfg.inflight <= 0 {
		return env.usageError("--duration, --size and --inflight must be positive")
	}
	for _, s := range cfg.servers {
		if err := checkHostPort("--server", s); err != nil {
			return env.usageError("%v", err)
		}
	}
	r, err := benchRun(ctx, benchOptions{Mode: cfg.mode, Duration: cfg.duration, Size: cfg.size, InFlight: cfg.inflight,
		Servers: cfg.servers, Tokens: cfg.token.list()})
	if err != nil {
		return env.fail(err)
	}
	if cfg.json {
		b, err := marshalJSON(r)
		if err != nil {
			return env.fail(err)
		}
		fmt.Fprintf(env.stdout, "%s\n", b)
		return exitOK
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	row := func(k, format string, v ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, v...)...) }
	row("peer", "%s", r.Peer)
	row("mode", "%s", r.Mode)
	row("payload", "%d B", r.Payload)
	row("seconds", "%.1f", r.Seconds)
	switch r.Mode {
	case "rr", "rrpar":
		if r.Mode == "rrpar" {
			row("in flight", "%d", r.InFlight)
		}
		row("requests/s", "%.0f", r.RequestsPerS)
		row("p50", "%d µs", r.P50us)
		row("p99", "%d µs", r.P99us)
		row("p99.9", "%d µs", r.P999us)
	case "pub":
		row("sent", "%d", r.Sent)
		row("received", "%d", r.Received)
		row("received/s", "%.0f", r.ReceivedPerS)
		row("dropped", "%d", r.Dropped)
	}
	tw.Flush()
	return exitOK
}
