package cluster

// A member of the cluster: start, members, metadata, leave and shutdown.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrClosed is returned by UpdateMeta after Leave or Shutdown.
var ErrClosed = errors.New("cluster: member has left or shut down")

const (
	// defaultLeaveTimeout is used by Leave when given no timeout.
	defaultLeaveTimeout = 5 * time.Second
	// updateTimeout bounds how long UpdateMeta waits for its gossip to go out.
	updateTimeout = 5 * time.Second
)

// Cluster is this process's member of a memberlist cluster. Its methods are
// safe for concurrent use, but Leave and Shutdown must not be called from
// inside an Events method (they wait for those calls to end).
type Cluster struct {
	name string // memberlist name: Meta.Node + "#" + boot id
	addr string // gossip host:port the others reach us at
	log  *slog.Logger
	ml   *memberlist.Memberlist
	ev   Events

	metaMu sync.Mutex             // serializes UpdateMeta
	meta   atomic.Pointer[[]byte] // encoded Meta served to memberlist
	self   atomic.Pointer[Meta]   // decoded Meta, for compatibility checks

	mu    sync.Mutex
	peers map[string]*peer     // compatible members reported up, by name
	gone  map[string]time.Time // members that said goodbye, by name

	rejectMu sync.Mutex
	rejected map[string]string // incompatible members already logged: name → reason

	queue  *queue
	evStop chan struct{}
	evDone chan struct{}

	joinStop chan struct{} // closed by Leave and Shutdown: stops the join and reconnect loops
	joinDone chan struct{} // nil when there are no seeds
	alone    chan struct{}

	rejoin            *rejoinList   // addresses of failed members and seeds, joined again
	reconnectInterval time.Duration // ≤ 0: reconnecting is off
	reconnectTimeout  time.Duration
	rejoinDone        chan struct{} // nil when reconnecting is off

	joinFailures   atomic.Int64 // failed join rounds, for tests
	rejoinAttempts atomic.Int64 // joins started by the reconnect loop, for tests
	rejoins        atomic.Int64 // of those, the ones that reached a member

	ready chan struct{} // closed once ml is set
	acks  chan<- string // guarded by mu; while saying goodbye: names of the peers that acknowledged

	closeMu sync.Mutex // serializes Leave and Shutdown
	closed  atomic.Bool
}

// Start creates the local member, bound to cfg.BindAddr, and starts joining
// cfg.Join in the background: it does not wait for any seed. ev (which may be
// nil) is told of other members from then on. Start fails on a bad
// configuration or when the gossip address cannot be bound.
func Start(cfg Config, ev Events) (*Cluster, error) {
	meta := cfg.Meta.normalized()
	if meta.Node == "" {
		return nil, errors.New("cluster: Config.Meta.Node is empty; every member needs a node name")
	}
	if strings.Contains(meta.Node, "#") {
		return nil, fmt.Errorf("cluster: node name %q contains '#', which separates the boot id", meta.Node)
	}
	encoded, err := meta.encode()
	if err != nil {
		return nil, err
	}
	if cfg.SecretKey != nil {
		if err := memberlist.ValidateKey(cfg.SecretKey); err != nil {
			return nil, fmt.Errorf("cluster: secret key of %d bytes: %w", len(cfg.SecretKey), err)
		}
	}
	mc, err := cfg.Preset.memberlistConfig()
	if err != nil {
		return nil, err
	}
	bind := cfg.BindAddr
	if bind == "" {
		bind = DefaultBindAddr
	}
	if mc.BindAddr, mc.BindPort, err = parseHostPort("bind address", bind); err != nil {
		return nil, err
	}
	if cfg.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = parseHostPort("advertise address", cfg.Advertise); err != nil {
			return nil, err
		}
	}
	mc.Label = labelPrefix + meta.Cluster
	if len(mc.Label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("cluster: cluster name %q is too long (the label %q exceeds %d bytes)", meta.Cluster, mc.Label, memberlist.LabelMaxSize)
	}
	mc.SecretKey = cfg.SecretKey

	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	mc.Name = meta.Node + "#" + boot

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if ev == nil {
		ev = EventFuncs{}
	}
	c := &Cluster{
		name:     mc.Name,
		log:      logger.With("component", "cluster", "self", mc.Name),
		ev:       ev,
		peers:    make(map[string]*peer),
		gone:     make(map[string]time.Time),
		rejected: make(map[string]string),
		queue:    newQueue(),
		evStop:   make(chan struct{}),
		evDone:   make(chan struct{}),
		joinStop: make(chan struct{}),
		alone:    make(chan struct{}, 1),
		ready:    make(chan struct{}),
		rejoin:   newRejoinList(maxRejoin),
	}
	c.reconnectInterval, c.reconnectTimeout = cfg.reconnect()
	c.meta.Store(&encoded)
	c.self.Store(&meta)

	d := delegate{c}
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Ping = d
	mc.LogOutput = nil
	mc.Logger = memberlistLogger(logger.With("component", "memberlist", "self", mc.Name))
	if cfg.WrapTransport != nil {
		nt, err := netTransport(mc)
		if err != nil {
			return nil, fmt.Errorf("cluster: start gossip on %s: %w", bind, err)
		}
		mc.Transport = cfg.WrapTransport(nt)
	}

	go c.deliver()
	c.ml, err = memberlist.Create(mc)
	if err != nil {
		if mc.Transport != nil {
			_ = mc.Transport.Shutdown()
		}
		close(c.evStop)
		<-c.evDone
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", bind, err)
	}
	close(c.ready)
	// Nobody knows our name yet, so nothing updates the local node now.
	local := c.ml.LocalNode()
	c.addr = net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port)))

	seeds := c.seeds(cfg.Join, bind)
	c.log.Info("started", "addr", c.addr, "preset", cfg.Preset.String(), "cluster", meta.Cluster,
		"encrypted", cfg.SecretKey != nil, "seeds", seeds, "reconnect_interval", c.reconnectInterval,
		"reconnect_timeout", c.reconnectTimeout)
	if len(seeds) > 0 {
		c.joinDone = make(chan struct{})
		go c.joinLoop(seeds)
	}
	if c.reconnectInterval > 0 {
		for _, s := range seeds {
			c.rejoin.addSeed(s)
		}
		c.rejoinDone = make(chan struct{})
		go c.reconnectLoop()
	}
	return c, nil
}

// netTransport makes memberlist's own network transport for mc, as
// memberlist.Create would (retrying a port that another socket took
// between the TCP and the UDP bind), and sets mc's ports from it.
func netTransport(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	var err error
	for range 10 {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger})
		if err == nil {
			if mc.BindPort == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				mc.AdvertisePort = mc.BindPort
			}
			return nt, nil
		}
		if mc.BindPort != 0 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

// bootID returns 16 random hex digits.
func bootID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("cluster: boot id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// seeds returns the join list without blanks, duplicates and this member's
// own address.
func (c *Cluster) seeds(join []string, bind string) []string {
	var out []string
	for _, s := range join {
		s = strings.TrimSpace(s)
		if s == "" || s == c.addr || s == bind || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Name returns the local member's memberlist name, "<Meta.Node>#<boot id>".
func (c *Cluster) Name() string { return c.name }

// LocalAddr returns the gossip host:port the others reach this member at:
// the bound address with its real port (or the advertised one). Give it to
// other members as a seed.
func (c *Cluster) LocalAddr() string { return c.addr }

// selfMeta returns the local member's current Meta.
func (c *Cluster) selfMeta() Meta { return *c.self.Load() }

// Members returns the compatible members this member currently sees as
// alive, itself included, sorted by name. After Leave or Shutdown it
// returns only the local member.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	out := make([]Member, 0, len(c.peers)+1)
	now := time.Now()
	for _, p := range c.peers {
		m := p.member
		if !p.lastAck.IsZero() {
			m.RTTMillis = millis(p.rtt)
			m.AckAgeMillis = max(millis(now.Sub(p.lastAck)), 0.001)
		}
		out = append(out, m)
	}
	c.mu.Unlock()
	out = append(out, Member{Name: c.name, Addr: c.addr, Meta: c.selfMeta(), State: StateAlive})
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// UpdateMeta replaces the local metadata and gossips it; the others see a
// MemberUp with it. Node, Process, Protocol and Cluster cannot change. It
// waits until the update has been sent (at most 5 s); the local change
// stands even when that wait times out.
func (c *Cluster) UpdateMeta(m Meta) error {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	m = m.normalized()
	cur := c.selfMeta()
	if m.Node != cur.Node || m.Process != cur.Process || m.Protocol != cur.Protocol || m.Cluster != cur.Cluster {
		return fmt.Errorf("cluster: UpdateMeta cannot change Node, Process, Protocol or Cluster (have %q/%q/%d/%q, got %q/%q/%d/%q)",
			cur.Node, cur.Process, cur.Protocol, cur.Cluster, m.Node, m.Process, m.Protocol, m.Cluster)
	}
	b, err := m.encode()
	if err != nil {
		return err
	}
	if bytes.Equal(b, *c.meta.Load()) {
		return nil
	}
	c.meta.Store(&b)
	c.self.Store(&m)
	if err := c.ml.UpdateNode(updateTimeout); err != nil {
		return fmt.Errorf("cluster: metadata changed locally, but its gossip did not go out within %v: %w", updateTimeout, err)
	}
	return nil
}

// Leave says goodbye and stops: every reachable peer is told directly and
// reports this member down with reason "left" at once; memberlist's leave is
// gossiped too. timeout bounds the whole (≤ 0 means 5 s). The member is
// stopped even when Leave returns an error. Calling Leave or Shutdown again
// does nothing.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Load() {
		return nil
	}
	c.closed.Store(true)
	if timeout <= 0 {
		timeout = defaultLeaveTimeout
	}
	deadline := time.Now().Add(timeout)
	close(c.joinStop)
	c.sayGoodbye(time.Now().Add(timeout / 2))

	var errs []error
	if err := c.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
	}
	if err := c.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("cluster: shutdown: %w", err))
	}
	c.stop()
	c.log.Info("left")
	return errors.Join(errs...)
}

// Shutdown stops the member without leaving, as if the process were
// killed: the others notice through the failure detector and report it
// dead. Calling it after Leave, or twice, does nothing.
func (c *Cluster) Shutdown() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Load() {
		return nil
	}
	c.closed.Store(true)
	close(c.joinStop)
	err := c.ml.Shutdown()
	c.stop()
	c.log.Info("shut down")
	if err != nil {
		return fmt.Errorf("cluster: shutdown: %w", err)
	}
	return nil
}

// stop waits for the join and reconnect loops and the events goroutine to
// end, then forgets the peers. Joins the reconnect loop started may still
// be under way; they end within memberlist's TCPTimeout.
func (c *Cluster) stop() {
	if c.joinDone != nil {
		<-c.joinDone
	}
	if c.rejoinDone != nil {
		<-c.rejoinDone
	}
	close(c.evStop)
	<-c.evDone
	c.mu.Lock()
	clear(c.peers)
	c.mu.Unlock()
}
