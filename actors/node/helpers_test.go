package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// Bounds for the waits in these tests: long enough for a loaded machine
// under -race, short enough that a hang fails quickly.
const (
	waitLong = 10 * time.Second
	retry    = 100 * time.Millisecond // every exchange's retry delay
)

// holdFor checks that cond keeps returning nil for the whole of d.
func holdFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := cond(); err != nil {
			t.Fatalf("did not hold for %v: %v", d, err)
		}
		select {
		case <-tick.C:
		case <-end.C:
			return
		}
	}
}

// recv takes a value from ch within timeout.
func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	var zero T
	return zero
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// logBuf keeps a node's log (debug level and up) for assertions, and
// prints it when the test fails.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines containing every one of the words.
func (l *logBuf) lines(words ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// proc is one netsvc process of a test: a node with its own actor
// system, registry and exchanges.
type proc struct {
	*node.Node
	name     string
	logs     *logBuf
	stopOnce sync.Once
}

// startNode starts a node; it is stopped when the test ends. Exchange
// configs without a retry delay get `retry`.
func startNode(t testing.TB, name string, xs ...exchange.Config) *proc {
	t.Helper()
	return startNodeWith(t, name, service.Config{}, xs...)
}

// startNodeWith is startNode with runtime settings.
func startNodeWith(t testing.TB, name string, rc service.Config, xs ...exchange.Config) *proc {
	t.Helper()
	logs := &logBuf{}
	for i := range xs {
		if xs[i].Retry == 0 {
			xs[i].Retry = retry
		}
	}
	n, err := node.Start(context.Background(), node.Config{
		Name: name, Exchanges: xs, Runtime: rc,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	p := &proc{Node: n, name: name, logs: logs}
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			lines := strings.Split(logs.String(), "\n")
			if len(lines) > 150 {
				lines = lines[len(lines)-150:]
			}
			t.Logf("log of %s (%s):\n%s", name, n.Runtime().ProcessID(), strings.Join(lines, "\n"))
		}
	})
	return p
}

// stop stops the node gracefully (once).
func (p *proc) stop(t testing.TB) {
	p.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", p.name, err)
		}
	})
}

// close stops the node at once, without the drain (once).
func (p *proc) close(t testing.TB) {
	p.stopOnce.Do(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close %s: %v", p.name, err)
		}
	})
}

func (p *proc) rt() *service.Runtime          { return p.Runtime() }
func (p *proc) pid() service.ProcessID        { return p.Runtime().ProcessID() }
func (p *proc) x(g string) *exchange.Exchange { return p.Exchange(g) }

// serverX and clientX are exchange configs with the test retry delay.
func serverX(group string, ln net.Listener, connect ...string) exchange.Config {
	c := node.Server(group, "127.0.0.1:0", connect...)
	c.Listener = ln
	c.Retry = retry
	return c
}

func clientX(group string, servers ...string) exchange.Config {
	c := node.Client(group, servers...)
	c.Retry = retry
	return c
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// --- services ---

func startService(t testing.TB, p *proc, name string, setup func(a *service.Agent) error, opts ...service.Option) service.Address {
	t.Helper()
	addr, err := p.rt().Start(ctxFor(t, waitLong), name, service.SetupFunc(setup), opts...)
	if err != nil {
		t.Fatalf("start service %s on %s: %v", name, p.name, err)
	}
	return addr
}

// startMath starts a service exporting multiply.
func startMath(t testing.TB, p *proc, name string, opts ...service.Option) service.Address {
	return startService(t, p, name, func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	}, opts...)
}

// multiply calls name.multiply(x, y) from p.
func multiply(p *proc, to service.Target, x, y int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return service.CallFor[int](ctx, p.rt(), to, "multiply", x, y)
}

func mustMultiply(t testing.TB, p *proc, to service.Target) {
	t.Helper()
	v, err := multiply(p, to, 6, 7)
	if err != nil || v != 42 {
		t.Fatalf("%s: %v.multiply(6, 7) = %d, %v; want 42", p.name, to, v, err)
	}
}

// visible waits until p sees n services of that name.
func visible(t testing.TB, p *proc, name string, n int) []service.Binding {
	t.Helper()
	var got []service.Binding
	nodetest.WaitFor(t, waitLong, func() error {
		got = p.rt().Lookup(name)
		if len(got) != n {
			return fmt.Errorf("%s sees %d services named %q, want %d: %v", p.name, len(got), name, n, got)
		}
		return nil
	})
	return got
}

func failureCode(err error) service.Code {
	var f *service.Failure
	if errors.As(err, &f) {
		return f.Code
	}
	return -1
}

// events records a registry watch.
type events struct {
	mu  sync.Mutex
	evs []service.RegistryEvent
}

func watch(t testing.TB, p *proc, target service.Target) *events {
	t.Helper()
	ev := &events{}
	stop, err := p.rt().Watch(ctxFor(t, waitLong), target, func(e service.RegistryEvent) {
		ev.mu.Lock()
		ev.evs = append(ev.evs, e)
		ev.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("watch %v on %s: %v", target, p.name, err)
	}
	t.Cleanup(stop.Cancel)
	return ev
}

func (e *events) all() []service.RegistryEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]service.RegistryEvent(nil), e.evs...)
}

// has reports whether the watch saw an event of that kind for a service
// of that name.
func (e *events) has(kind service.EventKind, name string) bool {
	for _, ev := range e.all() {
		if ev.Kind == kind && ev.Binding.Name == name {
			return true
		}
	}
	return false
}

func (e *events) waitFor(t testing.TB, kind service.EventKind, name string) {
	t.Helper()
	nodetest.WaitFor(t, waitLong, func() error {
		if !e.has(kind, name) {
			return fmt.Errorf("no %v event for %q in %v", kind, name, e.all())
		}
		return nil
	})
}

// linkEvents records what an exchange tells its link observers.
type linkEvents struct {
	mu  sync.Mutex
	evs []exchange.LinkEvent
}

func watchLinks(x *exchange.Exchange) *linkEvents {
	le := &linkEvents{}
	x.WatchLinks(func(ev exchange.LinkEvent) {
		le.mu.Lock()
		le.evs = append(le.evs, ev)
		le.mu.Unlock()
	})
	return le
}

// upDown returns the up and down events (not the synced ones) for peer p
// (every peer when p is 0) as a string like "up down up".
func (le *linkEvents) upDown(p service.ProcessID) string {
	le.mu.Lock()
	defer le.mu.Unlock()
	var out []string
	for _, ev := range le.evs {
		if ev.Synced || (p != 0 && ev.Link.PeerProcess != p) {
			continue
		}
		if ev.Active {
			out = append(out, "up")
		} else {
			out = append(out, "down")
		}
	}
	return strings.Join(out, " ")
}

// downReasons returns the reasons of the down events for peer p.
func (le *linkEvents) downReasons(p service.ProcessID) []string {
	le.mu.Lock()
	defer le.mu.Unlock()
	var out []string
	for _, ev := range le.evs {
		if !ev.Active && ev.Link.PeerProcess == p {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// activeLinks returns p's active links to peer (every peer when 0).
func activeLinks(p *proc, peer service.ProcessID) []exchange.LinkStatus {
	var out []exchange.LinkStatus
	for _, l := range p.Links() {
		if l.State == "active" && (peer == 0 || l.RemoteProcess == peer) {
			out = append(out, l)
		}
	}
	return out
}

// linkedTo waits until p has one active link to each of peers.
func linkedTo(t testing.TB, p *proc, peers ...*proc) {
	t.Helper()
	nodetest.WaitFor(t, waitLong, func() error {
		for _, q := range peers {
			if n := len(activeLinks(p, q.pid())); n != 1 {
				return fmt.Errorf("%s has %d active links to %s: %+v", p.name, n, q.name, p.Links())
			}
		}
		return nil
	})
}

// --- crashes ---

// crashKit lets a test end a node's TCP connections abruptly (RST, no
// bye), the closest in-process equivalent of killing the process: its
// listener tracks what it accepts, and its outgoing links go through
// proxies the kit owns.
type crashKit struct {
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
	proxies []*proxy
	crashed bool
}

type trackingListener struct {
	net.Listener
	k *crashKit
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.k.mu.Lock()
		if l.k.crashed {
			c.Close()
		} else {
			l.k.conns = append(l.k.conns, c)
		}
		l.k.mu.Unlock()
	}
	return c, err
}

// listener returns a listener whose connections the kit can cut.
func (k *crashKit) listener(t testing.TB) net.Listener {
	k.ln = trackingListener{Listener: listen(t), k: k}
	return k.ln
}

// via returns the address of a proxy to addr that the kit can cut.
func (k *crashKit) via(t testing.TB, addr string) string {
	p := newProxy(t, addr)
	k.mu.Lock()
	k.proxies = append(k.proxies, p)
	k.mu.Unlock()
	return p.addr()
}

// crash closes the listener and resets every connection.
func (k *crashKit) crash() {
	k.mu.Lock()
	k.crashed = true
	conns := k.conns
	k.conns = nil
	proxies := k.proxies
	k.mu.Unlock()
	if k.ln != nil {
		k.ln.Close()
	}
	for _, c := range conns {
		reset(c)
	}
	for _, p := range proxies {
		p.cut()
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// proxy forwards TCP connections to a target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cutted bool
}

func newProxy(t testing.TB, target string) *proxy {
	p := &proxy{ln: listen(t), target: target}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			reset(in)
			continue
		}
		p.mu.Lock()
		if p.cutted {
			p.mu.Unlock()
			reset(in)
			reset(out)
			return
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// cut stops the proxy and resets every connection through it.
func (p *proxy) cut() {
	p.mu.Lock()
	p.cutted = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		reset(c)
	}
}

// --- a raw peer speaking the wire protocol by hand ---

type rawFrame struct {
	kind connection.FrameKind
	body []byte
}

// rawPeer is a TCP connection to an exchange that a test drives byte by
// byte.
type rawPeer struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	pid service.ProcessID
}

func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, r: bufio.NewReader(c), pid: registry.NewProcessID()}
}

func (r *rawPeer) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("raw peer write: %v", err)
	}
}

// readFrame reads one frame within timeout.
func (r *rawPeer) readFrame(timeout time.Duration) (rawFrame, error) {
	r.c.SetReadDeadline(time.Now().Add(timeout))
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		return rawFrame{}, err
	}
	if n == 0 || n > 1<<24 {
		return rawFrame{}, fmt.Errorf("bad frame length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return rawFrame{}, err
	}
	return rawFrame{kind: connection.FrameKind(b[0]), body: b[1:]}, nil
}

// readUntilClosed reads frames until the exchange closes the connection,
// failing the test if it stays open past timeout.
func (r *rawPeer) readUntilClosed(timeout time.Duration) []rawFrame {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var frames []rawFrame
	for {
		f, err := r.readFrame(time.Until(deadline))
		if err == nil {
			frames = append(frames, f)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatalf("the exchange did not close the connection within %v (got %d frames)", timeout, len(frames))
		}
		return frames // EOF, reset, or a stream the server cut mid-frame
	}
}

// tryHandshake does the handshake (connection.Handshake) as the side
// that dialled, proving tokens (none: no token); h's zero fields take
// working values.
func (r *rawPeer) tryHandshake(h connection.Hello, tokens ...string) (connection.Hello, error) {
	return connection.Handshake(r.c, connection.HandshakeConfig{Local: r.fill(h), Dialer: true, Tokens: tokens})
}

// acceptHandshake does the handshake as the side that was dialled.
func (r *rawPeer) acceptHandshake(h connection.Hello, tokens ...string) connection.Hello {
	r.t.Helper()
	peer, err := connection.Handshake(r.c, connection.HandshakeConfig{Local: r.fill(h), Tokens: tokens})
	if err != nil {
		r.t.Fatalf("raw peer: handshake: %v", err)
	}
	return peer
}

func (r *rawPeer) fill(h connection.Hello) connection.Hello {
	if h.Protocol == 0 {
		h.Protocol = connection.Protocol
	}
	if h.Process == 0 {
		h.Process = r.pid
	}
	if h.Role == 0 {
		h.Role = registry.RoleClient
	}
	if h.Node == "" {
		h.Node = "raw"
	}
	return h
}

// handshake does the handshake as a client and reads the server's
// link-up dump up to its synced frame.
func (r *rawPeer) handshake(h connection.Hello, tokens ...string) connection.Hello {
	r.t.Helper()
	sh, err := r.tryHandshake(h, tokens...)
	if err != nil {
		r.t.Fatalf("raw peer: handshake: %v", err)
	}
	r.readUntilSynced()
	return sh
}

// readUntilSynced reads frames up to the end of the peer's link-up dump.
func (r *rawPeer) readUntilSynced() {
	r.t.Helper()
	for {
		f, err := r.readFrame(5 * time.Second)
		if err != nil {
			r.t.Fatalf("raw peer: reading the link-up dump: %v", err)
		}
		if f.kind == connection.FrameSynced {
			return
		}
	}
}

// announce tells the exchange of this raw process and a service of it.
func (r *rawPeer) announce(name string, id uint64) service.Address {
	addr := service.Address{Process: r.pid, ID: id}
	var b []byte
	b = connection.AppendAnnounce(b, registry.Change{Kind: service.Available, Process: true,
		Binding: service.Binding{Address: service.Address{Process: r.pid}, Node: "raw"}})
	b = connection.AppendAnnounce(b, registry.Change{Kind: service.Available,
		Binding: service.Binding{Name: name, Address: addr, Audience: "*", Node: "raw"}})
	b = connection.AppendSynced(b)
	r.write(b)
	return addr
}
