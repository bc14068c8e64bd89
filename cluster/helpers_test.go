package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests run real memberlist members on 127.0.0.1 with the Fast preset.
// Set CLUSTER_TEST_LOG=debug (or info, warn) to see their logs on stderr.
//
// Tests that measure a timing run one at a time: the Fast preset declares a
// member dead when its process is starved of CPU for about a second, which
// a dozen parallel tests under -race on two cores can do. Waits that only
// set the scene use the generous settle bound; measured waits use the bound
// under test.

// settle bounds waits that are not themselves under test.
const settle = 5 * time.Second

// checkFor calls f every interval until it returns nil, and fails the test
// with f's last error if that takes longer than timeout.
func checkFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// rec is one event a recorder got.
type rec struct {
	up     bool
	m      Member
	reason string
	at     time.Time
}

// recorder is an Events that keeps everything it is told.
type recorder struct {
	mu     sync.Mutex
	events []rec
}

func (r *recorder) MemberUp(m Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, rec{up: true, m: m, at: time.Now()})
}

func (r *recorder) MemberDown(m Member, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, rec{m: m, reason: reason, at: time.Now()})
}

// last returns the last event about the member called name, if any.
func (r *recorder) last(name string) (rec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].m.Name == name {
			return r.events[i], true
		}
	}
	return rec{}, false
}

// count returns how many events match f.
func (r *recorder) count(f func(rec) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if f(e) {
			n++
		}
	}
	return n
}

// logRecord is one log record, flattened.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog.Handler keeping Info and above in memory (and
// printing to stderr when CLUSTER_TEST_LOG asks for it).
type logRecorder struct {
	mu      *sync.Mutex
	records *[]logRecord
	attrs   []slog.Attr
	echo    slog.Handler
}

func newLogRecorder() *logRecorder {
	h := &logRecorder{mu: new(sync.Mutex), records: new([]logRecord)}
	if v := os.Getenv("CLUSTER_TEST_LOG"); v != "" {
		var level slog.Level
		_ = level.UnmarshalText([]byte(v))
		h.echo = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	return h
}

func (h *logRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || (h.echo != nil && h.echo.Enabled(ctx, l))
}

func (h *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	if h.echo != nil && h.echo.Enabled(ctx, r.Level) {
		_ = h.echo.WithAttrs(h.attrs).Handle(ctx, r)
	}
	if r.Level < slog.LevelInfo {
		return nil
	}
	lr := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		lr.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	*h.records = append(*h.records, lr)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append(slices.Clip(h.attrs), as...)
	return &h2
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// count returns how many records match f.
func (h *logRecorder) count(f func(logRecord) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range *h.records {
		if f(r) {
			n++
		}
	}
	return n
}

// testNode is a started member with its recorders.
type testNode struct {
	*Cluster
	cfg  Config
	rec  *recorder
	logs *logRecorder
}

var processCounter atomic.Uint64

// testConfig returns a Fast config for node on a free loopback port.
func testConfig(node string, join ...string) Config {
	id := processCounter.Add(1)
	return Config{
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Preset:   Fast,
		Meta: Meta{
			Process:  fmt.Sprintf("%016x", id),
			Node:     node,
			Exchange: fmt.Sprintf("127.0.0.1:%d", 20000+id%10000),
			Role:     RoleServer,
			Console:  "127.0.0.1:8080",
			Version:  "test",
			Protocol: 1,
		},
	}
}

// start starts a member with cfg and shuts it down when the test ends.
func start(t testing.TB, cfg Config) *testNode {
	t.Helper()
	n := &testNode{cfg: cfg, rec: &recorder{}, logs: newLogRecorder()}
	cfg.Logger = slog.New(n.logs)
	c, err := Start(cfg, n.rec)
	if err != nil {
		t.Fatalf("Start %s: %v", cfg.Meta.Node, err)
	}
	n.Cluster = c
	t.Cleanup(func() { _ = c.Shutdown() })
	return n
}

// startNode starts a Fast member called node joining join.
func startNode(t testing.TB, node string, join ...string) *testNode {
	t.Helper()
	return start(t, testConfig(node, join...))
}

// sees reports whether n has MemberUp as the last event about other, and
// other among its Members with the same metadata.
func (n *testNode) sees(other *testNode) error {
	e, ok := n.rec.last(other.Name())
	if !ok || !e.up {
		return fmt.Errorf("%s: no MemberUp for %s", n.Name(), other.Name())
	}
	want := other.selfMeta()
	if e.m.Meta != want {
		return fmt.Errorf("%s: MemberUp for %s has meta %+v, want %+v", n.Name(), other.Name(), e.m.Meta, want)
	}
	if e.m.Addr != other.LocalAddr() {
		return fmt.Errorf("%s: MemberUp for %s has addr %s, want %s", n.Name(), other.Name(), e.m.Addr, other.LocalAddr())
	}
	for _, m := range n.Members() {
		if m.Name == other.Name() {
			if m.Meta != want {
				return fmt.Errorf("%s: Members has %s with meta %+v, want %+v", n.Name(), other.Name(), m.Meta, want)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %s not in Members %v", n.Name(), other.Name(), names(n.Members()))
}

// allSee checks that every node sees every other and nothing else.
func allSee(nodes ...*testNode) error {
	for _, n := range nodes {
		if got := len(n.Members()); got != len(nodes) {
			return fmt.Errorf("%s sees %d members %v, want %d", n.Name(), got, names(n.Members()), len(nodes))
		}
		for _, o := range nodes {
			if o == n {
				continue
			}
			if err := n.sees(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// downAt returns when n was told that other went down, with the reason.
func (n *testNode) downAt(other string) (time.Time, string, error) {
	e, ok := n.rec.last(other)
	if !ok || e.up {
		return time.Time{}, "", fmt.Errorf("%s: no MemberDown for %s", n.Name(), other)
	}
	return e.at, e.reason, nil
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// freeAddr returns a loopback host:port free for both TCP and UDP right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		p, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		p.Close()
		return addr
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}

// isUp / isDown match recorder events about a member name.
func isUp(name string) func(rec) bool {
	return func(e rec) bool { return e.up && e.m.Name == name }
}

// mentions matches log records about member name whose message has text.
func mentions(name, text string) func(logRecord) bool {
	return func(r logRecord) bool {
		return strings.Contains(r.msg, text) && r.attrs["member"] == name
	}
}
