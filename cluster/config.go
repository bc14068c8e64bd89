package cluster

// Configuration: presets of memberlist's timings, and how a member
// binds, joins and tells about itself.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// DefaultBindAddr is the gossip address used when Config.BindAddr is
	// empty; it matches the default of `netsvc node --gossip`.
	DefaultBindAddr = "127.0.0.1:7946"

	// DefaultCluster is the cluster name used when Meta.Cluster is empty.
	DefaultCluster = "netsvc"

	// labelPrefix is put before the cluster name to form memberlist's
	// packet label; packets with another label are dropped by memberlist.
	labelPrefix = "netsvc/"
)

// Preset selects memberlist's failure-detector and gossip timings, and the
// defaults of Config.ReconnectInterval and ReconnectTimeout. The zero
// value is LAN. Detection times below were measured on loopback with 3–5
// members. A member that calls
// Leave is reported "left" at once in every preset: it tells its peers
// directly before it goes.
//
// Reconnecting: LAN and Local rejoin failed members every 30 s for 24 h,
// as Serf does. Fast rejoins them every second (for 24 h): it declares a
// member dead within about a second, so a partition healed is noticed as
// soon as it could have been detected; an attempt towards an address
// that drops packets waits memberlist's TCP timeout (1 s in Fast), so
// about one attempt per failed member is under way at a time, and a join
// is one push/pull of a few hundred bytes per member. Measured with five
// nodes in network namespaces (cmd/netsvc partition tests, cuts of 5 and
// 8 s): every member sees every other again 0.1–0.75 s after the network
// is back.
type Preset int

const (
	// LAN is memberlist.DefaultLANConfig: probe every 1 s (500 ms timeout),
	// suspicion multiplier 4, gossip every 200 ms, push/pull every 30 s.
	// A killed member is reported dead after about 5–8 s (measured 5.2–7.8 s);
	// a join or metadata change reaches everyone in about 0.2 s, but a
	// missed one waits for push/pull (up to 30 s).
	LAN Preset = iota

	// Local is memberlist.DefaultLocalConfig: probe every 1 s (200 ms
	// timeout), suspicion multiplier 3, gossip every 100 ms, push/pull every
	// 15 s. A killed member is reported dead after about 4.5–6 s (measured
	// 4.6–6.0 s); joins and updates take about 0.1 s, a missed one up to 15 s.
	Local

	// Fast is DefaultLocalConfig with ProbeInterval 200 ms, ProbeTimeout
	// 100 ms, SuspicionMult 2, GossipInterval 50 ms, RetransmitMult 6,
	// PushPullInterval 5 s, GossipToTheDeadTime 5 s and DeadNodeReclaimTime
	// 1 s. A killed member is reported dead after about 1 s (measured
	// 0.7–1.35 s); joins and updates take about 50–100 ms. A process paused
	// for more than about 1 s (debugger, SIGSTOP, swapping) is declared dead
	// too, so use it on loopback and in tests, not across a real network.
	Fast
)

// reconnectDefaults returns the preset's reconnect interval and timeout.
func (p Preset) reconnectDefaults() (interval, timeout time.Duration) {
	if p == Fast {
		return time.Second, 24 * time.Hour
	}
	return 30 * time.Second, 24 * time.Hour
}

// String returns "lan", "local" or "fast".
func (p Preset) String() string {
	switch p {
	case LAN:
		return "lan"
	case Local:
		return "local"
	case Fast:
		return "fast"
	}
	return "Preset(" + strconv.Itoa(int(p)) + ")"
}

// memberlistConfig returns memberlist's configuration for the preset.
func (p Preset) memberlistConfig() (*memberlist.Config, error) {
	switch p {
	case LAN:
		return memberlist.DefaultLANConfig(), nil
	case Local:
		return memberlist.DefaultLocalConfig(), nil
	case Fast:
		mc := memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.SuspicionMult = 2
		mc.GossipInterval = 50 * time.Millisecond
		mc.RetransmitMult = 6
		mc.PushPullInterval = 5 * time.Second
		mc.GossipToTheDeadTime = 5 * time.Second
		mc.DeadNodeReclaimTime = 1 * time.Second
		return mc, nil
	}
	return nil, fmt.Errorf("cluster: unknown preset %d (want LAN, Local or Fast)", int(p))
}

// Config says how a member binds, whom it joins and what it tells the others.
type Config struct {
	// BindAddr is the gossip host:port (TCP and UDP). Port 0 picks a free
	// port; read it back with Cluster.LocalAddr. Empty means DefaultBindAddr.
	BindAddr string

	// Advertise is the host:port the others should use to reach this member,
	// when it differs from BindAddr (NAT, 0.0.0.0). Empty: memberlist
	// derives it from BindAddr (for 0.0.0.0, a private address of the
	// host). With port 0 in BindAddr, memberlist advertises the bound port
	// whatever port Advertise names.
	Advertise string

	// Join lists seed gossip addresses (host:port). Start does not wait for
	// them: a background loop tries them all, retrying with backoff from
	// 100 ms up to 5 s until one answers, joins them once more a second
	// later (to catch members that started at the same moment), and starts
	// over whenever this member is left without peers. The seeds are also
	// rejoined every ReconnectInterval while no live member has their
	// address. The member's own address is skipped.
	Join []string

	// ReconnectInterval is how often this member joins again the members
	// it saw fail (not those that left) and its seeds, whether or not it is
	// alone, as Serf does. memberlist gossips only with members it believes
	// alive, so without it a partition longer than failure detection never
	// heals, and a node with no seeds that was cut off stays alone. 0 means
	// the preset's (see Preset); a negative value turns reconnecting off
	// (the seeds are still rejoined when the member is alone).
	ReconnectInterval time.Duration

	// ReconnectTimeout is how long after its failure a member is still
	// rejoined; then it is forgotten. 0 or less means the preset's (24 h).
	// At most 1,024 failed members are remembered: past that, the one that
	// failed first is forgotten first.
	ReconnectTimeout time.Duration

	// SecretKey enables memberlist's AES-GCM encryption with a 16, 24 or
	// 32 byte key. Every member of a cluster needs the same key; nil means
	// no encryption.
	SecretKey []byte

	// Preset selects the failure-detector timings and the reconnect
	// defaults; the zero value is LAN.
	Preset Preset

	// Meta is what this member gossips about itself. Meta.Node is required;
	// an empty Meta.Cluster means DefaultCluster.
	Meta Meta

	// Logger receives this package's logs and memberlist's own, each at its
	// level. Nil means quiet.
	Logger *slog.Logger

	// WrapTransport, when set, wraps memberlist's network transport
	// (bound to BindAddr) before gossip starts: to observe the gossip
	// traffic, or to cut it as package clustertest does in tests.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// reconnect returns the reconnect interval and timeout of cfg: its own,
// or the preset's; an interval ≤ 0 means off.
func (cfg Config) reconnect() (interval, timeout time.Duration) {
	interval, timeout = cfg.Preset.reconnectDefaults()
	if cfg.ReconnectInterval != 0 {
		interval = cfg.ReconnectInterval
	}
	if cfg.ReconnectTimeout > 0 {
		timeout = cfg.ReconnectTimeout
	}
	return interval, timeout
}

// parseHostPort splits a host:port into an IP string and port for
// memberlist, which wants an IP literal. An empty host means all IPv4
// interfaces; a name is resolved.
func parseHostPort(what, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %s %q: %w", what, addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %s %q: bad port %q", what, addr, portStr)
	}
	if host == "" {
		return "0.0.0.0", int(port), nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), int(port), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %s %q: %w", what, addr, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), int(port), nil
		}
	}
	return ips[0].String(), int(port), nil
}
