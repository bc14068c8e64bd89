package main

// "netsvc node": its flags become one node.Config; the node runs until
// SIGINT or SIGTERM, then drains.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/cluster"
)

// nodeFlags is the configuration of "netsvc node".
type nodeFlags struct {
	settings // the secrets: --token, --gossip-key, --console-token, their files and variables

	name         string
	listen       string
	group        string
	connect      listFlag // static peers
	retry        time.Duration
	token        settingValue // one, or two while rotating
	demo         bool
	demoInterval time.Duration
	logLevel     string
	logFormat    string

	handshakeTimeout time.Duration // expert: how long a new connection has to say hello (0: the link's default)
	drainTimeout     time.Duration // how long a stop drains before closing
	limits           nodeLimits    // --limit NAME=VALUE

	// Cluster discovery: "" for gossip means off.
	gossip          string
	gossipAdvertise string
	join            listFlag
	gossipKey       settingValue // as given: base64 of 16, 24 or 32 bytes
	secretKey       []byte       // decoded gossipKey
	presetName      string
	preset          cluster.Preset // parsed presetName
	advertise       string         // the exchange address told to peers

	// The console: "" means off.
	console      string
	consoleToken settingValue
	consoleCert  string // --console-tls-cert
	consoleKey   string // --console-tls-key

	tls tlsFlags // --tls-cert, --tls-key, --tls-ca

	level slog.Level // parsed logLevel
}

// listFlag is a repeatable flag that also takes comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

const (
	defaultListen  = "127.0.0.1:11111"
	defaultGossip  = "127.0.0.1:7946"
	defaultConsole = "127.0.0.1:8080"
)

func nodeCommand() *command {
	return &command{
		name:    "node",
		summary: "run an exchange server node",
		usage:   "[--name NAME] [--listen HOST:PORT] [--group NAME] [--connect HOST:PORT]... [--demo] [flags]",
		flags: func(fs *flag.FlagSet) any {
			c := &nodeFlags{}
			host, _ := os.Hostname()
			fs.StringVar(&c.name, "name", host, "the node's `NAME` in bindings, links and the console")
			fs.StringVar(&c.listen, "listen", defaultListen, "accept peers and clients on `HOST:PORT`")
			fs.StringVar(&c.group, "group", "", "the exchange `GROUP` this node serves (\"\" is the default group)")
			fs.Var(&c.connect, "connect", "a static peer `HOST:PORT` to link to and keep linked (repeatable, or comma-separated)")
			fs.DurationVar(&c.retry, "retry", exchange.DefaultRetry, "delay between attempts to reach a peer")
			c.bind(fs, &c.token, tokenSetting, "", "an auth `TOKEN` every peer and client must prove, as this node does; two comma-separated rotate it (both accepted, the first proven)")
			fs.BoolVar(&c.demo, "demo", false, "also host the demo services math, seed and hidden")
			fs.DurationVar(&c.demoInterval, "demo-interval", time.Second, "how often the demo service seed publishes next")
			fs.StringVar(&c.logLevel, "log-level", "info", "log `LEVEL` on stderr: debug, info, warn or error")
			fs.StringVar(&c.logFormat, "log-format", "text", "log `FORMAT` on stderr: text (logfmt, with a few lines for humans at start) or json (one JSON object a line, nothing else)")
			fs.StringVar(&c.gossip, "gossip", defaultGossip, "gossip (cluster discovery) address `HOST:PORT`, or off")
			fs.Var(&c.join, "join", "gossip seeds `HOST:PORT,...` (repeatable)")
			c.bind(fs, &c.gossipKey, gossipKeySetting, "", "gossip encryption `KEY`: base64 of 16, 24 or 32 bytes")
			fs.StringVar(&c.presetName, "gossip-preset", "lan", "failure-detector timings: lan (dead in ~5-8 s), local (~5 s) or fast (~1 s, loopback and tests only)")
			fs.StringVar(&c.gossipAdvertise, "gossip-advertise", "", "gossip address `HOST:PORT` peers should use, when --gossip binds 0.0.0.0 or is behind NAT")
			fs.StringVar(&c.advertise, "advertise", "", "exchange address `HOST:PORT` peers should dial, when --listen binds 0.0.0.0 or is behind NAT")
			fs.StringVar(&c.console, "console", defaultConsole, "console (HTTP) address `HOST:PORT`, or off")
			c.bind(fs, &c.consoleToken, consoleTokenSetting, "", "`TOKEN` the console asks for; needed when it is not on loopback")
			fs.StringVar(&c.consoleCert, "console-tls-cert", "", "serve the console over HTTPS with the certificate in `FILE` (PEM); needs --console-tls-key")
			fs.StringVar(&c.consoleKey, "console-tls-key", "", "private key `FILE` (PEM) of --console-tls-cert")
			c.tls.register(fs, false)
			fs.Var(limitsFlag{&c.limits}, "limit", "a bound on what peers can make the node hold, `NAME=VALUE` (repeatable; the names are listed below)")
			fs.DurationVar(&c.drainTimeout, "drain-timeout", node.DefaultDrainTimeout, "on SIGINT/SIGTERM, how long to let clients move and running requests finish before closing")
			fs.DurationVar(&c.handshakeTimeout, "handshake-timeout", 0, "expert: close a connection that has not said hello within this `DURATION` (0: 5s)")
			return c
		},
		run: runNode,
	}
}

// validate checks the flags and fills the derived fields.
func (c *nodeFlags) validate() error {
	if c.name == "" {
		return fmt.Errorf("--name is empty")
	}
	if err := checkHostPort("--listen", c.listen); err != nil {
		return err
	}
	for _, p := range c.connect {
		if err := checkHostPort("--connect", p); err != nil {
			return err
		}
	}
	if c.retry <= 0 {
		return fmt.Errorf("--retry must be positive, got %v", c.retry)
	}
	if err := c.tls.validate(false); err != nil {
		return err
	}
	if c.handshakeTimeout < 0 {
		return fmt.Errorf("--handshake-timeout must not be negative, got %v", c.handshakeTimeout)
	}
	if c.drainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout must be positive, got %v", c.drainTimeout)
	}
	if c.demoInterval <= 0 {
		return fmt.Errorf("--demo-interval must be positive, got %v", c.demoInterval)
	}
	if err := c.level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if (c.consoleCert == "") != (c.consoleKey == "") {
		return errors.New("--console-tls-cert and --console-tls-key go together")
	}
	if c.logFormat == "" {
		c.logFormat = "text"
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.logFormat)
	}
	if strings.EqualFold(c.gossip, "off") {
		c.gossip = ""
	} else if err := checkHostPort("--gossip", c.gossip); err != nil {
		return err
	}
	for _, p := range c.join {
		if err := checkHostPort("--join", p); err != nil {
			return err
		}
	}
	switch strings.ToLower(c.presetName) {
	case "lan":
		c.preset = cluster.LAN
	case "local":
		c.preset = cluster.Local
	case "fast":
		c.preset = cluster.Fast
	default:
		return fmt.Errorf("--gossip-preset %q: want lan, local or fast", c.presetName)
	}
	if c.gossipAdvertise != "" {
		if err := checkHostPort("--gossip-advertise", c.gossipAdvertise); err != nil {
			return err
		}
	}
	if c.advertise != "" {
		if err := checkHostPort("--advertise", c.advertise); err != nil {
			return err
		}
	}
	if c.gossip == "" && len(c.join) > 0 {
		return fmt.Errorf("--join needs gossip, but --gossip is off")
	}
	if c.gossipKey.isSet() {
		k, err := base64.StdEncoding.DecodeString(c.gossipKey.get())
		if err != nil {
			return fmt.Errorf("the gossip key %s is not base64: %v", c.gossipKey.from(), err)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("the gossip key %s is %d bytes: want 16, 24 or 32", c.gossipKey.from(), n)
		}
		c.secretKey = k
	}
	if strings.EqualFold(c.console, "off") {
		c.console = ""
	} else {
		if err := checkHostPort("--console", c.console); err != nil {
			return err
		}
		if host, _, _ := net.SplitHostPort(c.console); !isLoopback(host) && !c.consoleToken.isSet() {
			return fmt.Errorf("--console %s is reachable from other hosts: set %s (or bind it to 127.0.0.1)", c.console, consoleTokenSetting.sources())
		}
	}
	return nil
}

func runNode(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*nodeFlags)
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	opts := &slog.HandlerOptions{Level: cfg.level}
	var log *slog.Logger
	// The lines for humans (where it listens, the console's address) go
	// out with text logs only: a JSON log is read by machines, and each
	// of its lines must parse; everything they say is in "node started".
	human := env.stderr
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(env.stderr, opts))
		human = io.Discard
	} else {
		log = slog.New(slog.NewTextHandler(env.stderr, opts))
	}
	nc, err := cfg.nodeConfig(log)
	if err != nil {
		return env.fail(err)
	}
	n, err := node.Start(ctx, nc)
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintf(human, "netsvc node %q listening on %s (%s)\n", cfg.name, n.Addr(), groupText(cfg.group))
	for _, e := range exposures(*cfg, n.Addr()) {
		log.Warn(e.msg, e.attrs...)
		fmt.Fprintf(human, "netsvc node: warning: %s\n", e.human)
	}
	log.Info("node started", "node", cfg.name, "process", n.Runtime().ProcessID(), "listen", n.Addr(),
		"group", cfg.group, "connect", cfg.connect.String(), "token", cfg.token, "tls", cfg.tls.cert != "",
		"limits", limitsFlag{&cfg.limits}.String(), "drain_timeout", cfg.drainTimeout)
	if c := n.Console(); c != nil {
		note := ""
		if cfg.consoleToken.isSet() {
			note = " (add ?token=TOKEN, the console token " + cfg.consoleToken.from() + ")"
		}
		fmt.Fprintf(human, "console on %s%s\n", c.URL(), note)
	}
	if m := n.Mesh(); m != nil {
		fmt.Fprintf(human, "gossip on %s (preset %s)", m.Cluster().LocalAddr(), cfg.preset)
		if len(cfg.join) > 0 {
			fmt.Fprintf(human, ", joining %s", cfg.join.String())
		}
		fmt.Fprintln(human)
	}
	if cfg.demo {
		if err := startDemo(ctx, n.Runtime(), cfg.demoInterval); err != nil {
			n.Close()
			return env.fail(err)
		}
		log.Info("demo services started", "services", "math seed hidden", "interval", cfg.demoInterval)
	}
	// Until SIGINT or SIGTERM (main turns them into ctx's end; a second
	// one kills the process), then the drain.
	<-ctx.Done()
	log.Info("stopping: draining", "drain_timeout", cfg.drainTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout+10*time.Second)
	defer cancel()
	if err := n.Stop(stopCtx); err != nil {
		log.Error("node did not stop cleanly", "error", err)
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}

// nodeConfig is the node's configuration from the flags.
func (c *nodeFlags) nodeConfig(log *slog.Logger) (node.Config, error) {
	nc := node.Config{
		Name: c.name, Listen: c.listen, Advertise: c.advertise, Group: c.group, Peers: c.connect,
		Retry: c.retry, Tokens: c.token.list(), Link: c.limits.link, Limits: c.limits.node,
		Runtime: c.limits.runtime, Logger: log, DrainTimeout: c.drainTimeout,
	}
	nc.Link.HandshakeTimeout = c.handshakeTimeout
	var err error
	if nc.ServerTLS, nc.ClientTLS, err = c.tls.load(); err != nil {
		return nc, err
	}
	if c.gossip != "" {
		nc.Gossip = &cluster.Config{BindAddr: c.gossip, Advertise: c.gossipAdvertise, Join: c.join,
			SecretKey: c.secretKey, Preset: c.preset, Meta: cluster.Meta{Version: buildVersion()}}
	}
	if c.console != "" {
		gossip := c.gossip
		if gossip == "" {
			gossip = "off"
		}
		nc.Console = &console.Config{
			Addr:  c.console,
			Token: c.consoleToken.get(),
			NodeInfo: func() map[string]any {
				return map[string]any{
					"version": buildVersion(),
					"gossip":  gossip,
					"join":    append([]string{}, c.join...),
					"connect": append([]string{}, c.connect...),
					"demo":    c.demo,
				}
			},
			GatewayMaxBody:     c.limits.console.GatewayMaxBody,
			GatewayMaxInFlight: c.limits.console.GatewayMaxInFlight,
		}
		if c.consoleCert != "" {
			cert, err := tls.LoadX509KeyPair(c.consoleCert, c.consoleKey)
			if err != nil {
				return nc, fmt.Errorf("the console's certificate: %w", err)
			}
			nc.Console.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	return nc, nil
}

// checkHostPort checks that addr is HOST:PORT with a numeric port; HOST
// may be empty (all interfaces) and PORT 0 (any free port).
func checkHostPort(flagName, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want HOST:PORT", flagName, addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && flagName != "--listen" && flagName != "--gossip" && flagName != "--console") {
		return fmt.Errorf("%s %q: bad port %q", flagName, addr, port)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// exposure is a listener open beyond loopback with nothing guarding it,
// told at start both as a log line and to the person running the node.
type exposure struct {
	msg   string // the log message
	attrs []any  // its attributes
	human string // the line for stderr: the risk and the flags that fix it
}

// exposures lists what the node opens beyond loopback unguarded: the
// exchange (listening on listen) without a token or TLS, which lets any
// host that reaches it join the group, call every service and publish;
// and gossip without a key, which lets any host read and join the
// cluster's member list. A node that only binds loopback says nothing.
func exposures(cfg nodeFlags, listen string) []exposure {
	var out []exposure
	if !loopbackAddr(listen) && !cfg.token.isSet() && cfg.tls.cert == "" {
		out = append(out, exposure{
			msg:   "exchange open to other hosts without a token or TLS",
			attrs: []any{"listen", listen},
			human: fmt.Sprintf("the exchange listens on %s, beyond loopback, with no token and no TLS: any host that reaches it can link, "+
				"call every service and publish as any; set a token (%s), serve TLS (--tls-cert, --tls-key, --tls-ca), or listen on 127.0.0.1",
				listen, tokenSetting.sources()),
		})
	}
	if cfg.gossip != "" && !loopbackAddr(cfg.gossip) && !cfg.gossipKey.isSet() {
		out = append(out, exposure{
			msg:   "gossip open to other hosts without a key",
			attrs: []any{"gossip", cfg.gossip},
			human: fmt.Sprintf("gossip binds %s, beyond loopback, with no key: any host that reaches it can read the member list "+
				"and join the cluster, steering its nodes to dial addresses it announces; set %s, or bind --gossip to 127.0.0.1",
				cfg.gossip, gossipKeySetting.sources()),
		})
	}
	return out
}

// loopbackAddr reports whether HOST:PORT binds loopback only; an empty
// or unspecified host binds every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

// groupText names an exchange group for humans: the default one ("") as
// such, others quoted.
func groupText(g string) string {
	if g == "" {
		return "the default group"
	}
	return fmt.Sprintf("group %q", g)
}
