package main

// "netsvc ping" and "netsvc members": asked of the node over the client's
// exchange link, no console needed.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

type pingFlags struct {
	clientFlags
	count int
}

func pingCommand() *command {
	return &command{
		name:    "ping",
		summary: "round trips to the node, or through it to a service",
		usage:   "--server HOST:PORT [--group NAME] [--count N] [SERVICE]",
		flags: func(fs *flag.FlagSet) any {
			c := &pingFlags{}
			c.register(fs, "give up linking to the server, and on each round trip, after this long")
			fs.IntVar(&c.count, "count", 3, "how many round trips (`N`)")
			return c
		},
		run: runPing,
	}
}

// serverProcess returns the process of the node a client command is
// linked to.
func serverProcess(n *node.Node) (service.ProcessID, error) {
	for _, l := range n.Links() {
		if l.State == "active" {
			return l.RemoteProcess, nil
		}
	}
	return 0, errors.New("not linked to the node")
}

func runPing(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*pingFlags)
	if len(env.args) > 1 {
		return env.usageError("want at most one SERVICE")
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	if cfg.count <= 0 {
		return env.usageError("--count must be positive, got %d", cfg.count)
	}
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "ping", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	var target service.Target
	what := "node " + cfg.server
	if len(env.args) == 1 {
		target, what = service.Name(env.args[0]), "service "+env.args[0]
	} else {
		p, err := serverProcess(n)
		if err != nil {
			return env.fail(err)
		}
		target = service.Address{Process: p}
	}
	var took []time.Duration
	for range cfg.count {
		cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		start := time.Now()
		_, err := n.Runtime().Call(cctx, target, registry.MethodPing)
		cancel()
		if err != nil {
			return env.fail(fmt.Errorf("ping %s: %w", what, err))
		}
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(env.stdout, "%s: %d round trips, min/avg/max %s/%s/%s ms\n", what, len(took),
		ms(took[0]), ms(sum/time.Duration(len(took))), ms(took[len(took)-1]))
	return exitOK
}

func membersCommand() *command {
	return &command{
		name:    "members",
		summary: "list the cluster members the node knows, over the client's link",
		usage:   "--server HOST:PORT [--group NAME] [--json]",
		flags: func(fs *flag.FlagSet) any {
			c := &membersFlags{}
			c.register(fs, "give up linking to the server after this long")
			fs.BoolVar(&c.json, "json", false, "print a JSON array instead of a table")
			return c
		},
		run: runMembers,
	}
}

type membersFlags struct {
	clientFlags
	json bool
}

// memberRow is one member as members reads and prints it.
type memberRow struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`
	State string `json:"state"`
	Meta  struct {
		Node     string `json:"node"`
		Exchange string `json:"exchange"`
		Group    string `json:"group"`
		Console  string `json:"console"`
	} `json:"meta"`
	RTTMillis    float64 `json:"rtt_ms,omitempty"`
	AckAgeMillis float64 `json:"ack_age_ms,omitempty"`
}

func runMembers(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*membersFlags)
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "members", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	p, err := serverProcess(n)
	if err != nil {
		return env.fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	res, err := n.Runtime().Call(cctx, service.Address{Process: p}, registry.MethodMembers)
	if errors.Is(err, service.ErrNoSuchMethod) {
		return env.fail(fmt.Errorf("%s has no cluster (it runs with --gossip off)", cfg.server))
	}
	if err != nil {
		return env.fail(err)
	}
	var ms []memberRow
	if err := res.Decode(&ms); err != nil {
		return env.fail(fmt.Errorf("the members: %w", err))
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Meta.Node < ms[j].Meta.Node })
	if cfg.json {
		b, err := marshalJSON(ms)
		if err != nil {
			return env.fail(err)
		}
		fmt.Fprintf(env.stdout, "%s\n", b)
		return exitOK
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tEXCHANGE\tGROUP\tGOSSIP\tRTT\tCONSOLE")
	for _, m := range ms {
		rtt := "-"
		if m.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.2f ms", m.RTTMillis)
		}
		console := m.Meta.Console
		if console == "" {
			console = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Meta.Node, m.State, m.Meta.Exchange, groupLabel(m.Meta.Group), m.Addr, rtt, console)
	}
	tw.Flush()
	return exitOK
}

func groupLabel(g string) string {
	if g == "" {
		return `""`
	}
	return g
}
