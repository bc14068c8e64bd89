package main

// What the client commands share: their flags, starting a client node
// linked to --server, and stopping it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
)

// clientFlags are the flags of every command that links to a node.
type clientFlags struct {
	settings // --token, --token-file, NETSVC_TOKEN

	server  string
	group   string
	token   settingValue
	timeout time.Duration
	tls     tlsFlags // --tls-ca, --tls-cert, --tls-key, --tls-server-name
	// metrics is where this client process serves its console and
	// /metrics ("" for nowhere); logLevel and logFormat, where the
	// library's logs go (nowhere unless --log-level is given).
	metrics             string
	logLevel, logFormat string

	// progress is told, once, when the link is slow to come (nil: not
	// told), so a command waiting on a node that is down or starting
	// does not look hung.
	progress io.Writer
	logOut   io.Writer // where --log-level logs go: stderr
}

func (c *clientFlags) register(fs *flag.FlagSet, timeoutUsage string) {
	fs.StringVar(&c.server, "server", envOr("NETSVC_SERVER", "127.0.0.1:11111"), "the node to link to (`HOST:PORT`; default NETSVC_SERVER, else 127.0.0.1:11111)")
	fs.StringVar(&c.group, "group", os.Getenv("NETSVC_GROUP"), "the exchange `GROUP` of the node (\"\" is the default group; default NETSVC_GROUP)")
	c.bind(fs, &c.token, tokenSetting, "", "the node's auth `TOKEN`, when it asks for one; the first of two comma-separated is the one proven")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, timeoutUsage)
	c.tls.register(fs, true)
	fs.StringVar(&c.metrics, "metrics", "", "serve this process's /metrics (and console) on `HOST:PORT`, e.g. for a long-running subscribe")
	fs.StringVar(&c.logLevel, "log-level", "", "log the library's `LEVEL` and above on stderr: debug, info, warn or error (default: none)")
	fs.StringVar(&c.logFormat, "log-format", "text", "with --log-level: text or json")
}

// logger is the library's logger of a client command: none unless
// --log-level was given.
func (c *clientFlags) logger(stderr io.Writer) *slog.Logger {
	if c.logLevel == "" {
		return slog.New(slog.DiscardHandler)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel)) // checked by validate
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

func (c *clientFlags) validate() error {
	if err := checkHostPort("--server", c.server); err != nil {
		return err
	}
	if c.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", c.timeout)
	}
	if c.logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
			return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
		}
	}
	if c.logFormat != "text" && c.logFormat != "json" && c.logFormat != "" {
		return fmt.Errorf("--log-format %q: want text or json", c.logFormat)
	}
	if c.metrics != "" {
		if err := checkHostPort("--metrics", c.metrics); err != nil {
			return err
		}
	}
	return c.tls.validate(true)
}

// clientRetry is how soon a client command redials its node after the
// link drops (a long-running subscribe or publisher).
const clientRetry = time.Second

// startClient starts a client process linked to the node and waits until
// the node's registry has arrived, or fails fast with the node's reason
// when it refuses the link (wrong group, token, version).
func startClient(ctx context.Context, cmd string, cf *clientFlags) (*node.Node, error) {
	host, _ := os.Hostname()
	xc := node.Client(cf.group, cf.server)
	xc.Retry = clientRetry
	xc.Tokens = cf.token.list()
	var err error
	if _, xc.ClientTLS, err = cf.tls.load(); err != nil {
		return nil, err
	}
	nc := node.Config{
		Name:      fmt.Sprintf("netsvc-%s@%s/%d", cmd, host, os.Getpid()),
		Exchanges: []exchange.Config{xc},
		Logger:    cf.logger(cf.logOut),
	}
	if cf.metrics != "" {
		nc.Console = &console.Config{Addr: cf.metrics}
	}
	n, err := node.Start(ctx, nc)
	if err != nil {
		return nil, err
	}
	if err := waitLinked(ctx, n, cf.server, cf.timeout, func(reason string) {
		if cf.progress != nil {
			fmt.Fprintf(cf.progress, "netsvc %s: waiting for %s (%s); giving up after %v\n", cmd, cf.server, reason, cf.timeout)
		}
	}); err != nil {
		stopNode(n)
		if strings.Contains(err.Error(), "not authorised") {
			err = fmt.Errorf("%w (%s)", err, tokenNote(cf.token))
		}
		return nil, err
	}
	return n, nil
}

// tokenNote says which token a refused client proved, by its source
// only, so a stale NETSVC_TOKEN picked up unawares is plain to see.
func tokenNote(v settingValue) string {
	if !v.isSet() {
		return "no token given: set " + tokenSetting.sources()
	}
	return "token " + v.from()
}

// waitLinked waits until the node's link is synced: everything the
// server announced at link-up is in this process's registry. It watches
// the dial targets meanwhile, so a server that refuses this process
// ends the wait at once with the server's reason instead of a timeout.
// slow is called once if the link is not up after slowLink and a dial
// has failed, with why.
func waitLinked(ctx context.Context, n *node.Node, server string, timeout time.Duration, slow func(reason string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	synced := make(chan error, 1)
	go func() { synced <- n.WaitSynced(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	slowAt := time.Now().Add(slowLink)
	for {
		select {
		case err := <-synced:
			if err == nil {
				return nil
			}
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("interrupted while linking to %s", server)
			}
			if err := n.Refused(); err != nil {
				return err
			}
			if last := lastTargetError(n); last != "" {
				return fmt.Errorf("no link to %s within %v: %s", server, timeout, last)
			}
			return fmt.Errorf("no link to %s within %v", server, timeout)
		case <-tick.C:
			if err := n.Refused(); err != nil {
				return err
			}
			// Only once a dial has failed: a link that is merely slow
			// to come (a loaded machine) is not worth a line.
			if slow != nil && time.Now().After(slowAt) {
				if reason := lastTargetError(n); reason != "" {
					slow(reason)
					slow = nil
				}
			}
		}
	}
}

// slowLink is how long a command waits for its link before saying it is
// still waiting.
const slowLink = time.Second

func lastTargetError(n *node.Node) string {
	for _, x := range n.Exchanges() {
		for _, t := range x.Targets() {
			if t.LastErr != "" {
				return t.LastErr
			}
		}
	}
	return ""
}

// stopNode stops a node, bounded in time.
func stopNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Stop(ctx)
}

// serverLink returns the client's active link to its server.
func serverLink(n *node.Node) (exchange.LinkStatus, bool) {
	for _, l := range n.Links() {
		if l.State == "active" {
			return l, true
		}
	}
	return exchange.LinkStatus{}, false
}

// envOr returns the environment variable's value, or def when it is
// unset or empty: a flag's default from the environment, so a flag given
// still wins, and the variable spares repeating it on every command.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
