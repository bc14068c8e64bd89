package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// Servers from TestConfig find each other by gossip and mesh; a client
// from Connect can call their services the moment it returns.
func TestTestConfigClusterAndConnect(t *testing.T) {
	nodes := nodetest.Cluster(t, "srv", 3)
	for _, n := range nodes {
		name := n.Runtime().Node()
		if _, err := n.Runtime().Start(context.Background(), "svc-"+name, service.SetupFunc(func(a *service.Agent) error {
			a.Export("whoami", func() string { return name })
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		for _, n := range nodes {
			if got := len(n.Runtime().Lookup("svc-srv-3")); got != 1 {
				return fmt.Errorf("%s sees svc-srv-3 %d times", n.Runtime().Node(), got)
			}
		}
		return nil
	})
	ctx := ctxFor(t, waitLong)
	cli, err := node.Connect(ctx, node.Config{Name: "cli", Servers: []string{"127.0.0.1:1", nodes[1].Addr()}, Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	// No waiting: Connect returned with the registry synced.
	for _, n := range nodes {
		name := n.Runtime().Node()
		got, err := service.CallFor[string](ctx, cli.Runtime(), service.Name("svc-"+name), "whoami")
		if err != nil || got != name {
			t.Fatalf("call svc-%s right after Connect: %q, %v", name, got, err)
		}
	}
	if err := cli.Ready(); err != nil {
		t.Errorf("a synced client is not ready: %v", err)
	}
}

// Connect fails fast when the server refuses the client, with the
// server's reason, and when no server answers before ctx ends; either
// way nothing is left running.
func TestConnectFails(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Name: "srv", Listen: "127.0.0.1:0", Tokens: []string{"right"}})
	ctx := ctxFor(t, waitLong)
	begun := time.Now()
	_, err := node.Connect(ctx, node.Config{Name: "cli", Servers: []string{srv.Addr()}, Tokens: []string{"wrong"}})
	if err == nil || !strings.Contains(err.Error(), "refused the link") || !strings.Contains(err.Error(), "not authorised") {
		t.Fatalf("Connect with a wrong token: %v; want the server's refusal", err)
	}
	if d := time.Since(begun); d > waitLong/2 {
		t.Errorf("the refusal took %v to report", d)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = node.Connect(short, node.Config{Name: "cli", Servers: []string{"127.0.0.1:1"}, Retry: 50 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to nobody: %v; want the deadline", err)
	}
	if _, err := node.Connect(ctx, node.Config{Name: "cli"}); err == nil {
		t.Fatal("Connect without Servers succeeded")
	}
}

// Start refuses configurations that cannot work, with the reason.
func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]node.Config{
		"no name":                {Listen: "127.0.0.1:0"},
		"a client that listens":  {Name: "x", Listen: "127.0.0.1:0", Servers: []string{"127.0.0.1:1"}},
		"peers without Listen":   {Name: "x", Peers: []string{"127.0.0.1:1"}},
		"gossip without Listen":  {Name: "x", Servers: []string{"127.0.0.1:1"}, Gossip: node.TestConfig("x").Gossip},
		"two endpoints in group": {Name: "x", Listen: "127.0.0.1:0", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}},
		"a client endpoint listening": {Name: "x", Exchanges: []exchange.Config{
			{Role: node.Client("").Role, Listen: "127.0.0.1:0", Connect: []string{"127.0.0.1:1"}}}},
	} {
		n, err := node.Start(context.Background(), cfg)
		if err == nil {
			n.Close()
			t.Errorf("%s: started", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

// An exchange bound to every interface advertises an address peers can
// dial, not 0.0.0.0.
func TestAdvertiseUnspecified(t *testing.T) {
	n := nodetest.Start(t, node.Config{Name: "all", Listen: "0.0.0.0:0"})
	adv := n.Exchange("").Advertised()
	host, _, err := net.SplitHostPort(adv)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		t.Fatalf("advertised %q for a listener on every interface", adv)
	}
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// /healthz and /readyz answer without the console's token and say
// nothing but ok or why not; ready needs a link when seeds are given
// (until the grace period), and ends with the drain.
func TestHealthProbes(t *testing.T) {
	cfg := node.TestConfig("probed")
	cfg.Console.Token = "console-secret"
	cfg.Gossip.Join = []string{"127.0.0.1:1"} // a seed that never answers
	cfg.ReadyGrace = time.Hour
	n := nodetest.Start(t, cfg)
	base := "http://" + n.Console().Addr()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || body != "not linked to a peer yet" {
		t.Fatalf("/readyz with no peer = %d %q", code, body)
	}
	if code, _ := get(t, base+"/api/node"); code != http.StatusUnauthorized {
		t.Fatalf("/api/node without the token = %d, want 401", code)
	}
	// A peer links: ready.
	peer := nodetest.Server(t, "peer", n.Mesh().Cluster().LocalAddr())
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		if code, body := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	if err := n.Ready(); err != nil {
		t.Fatalf("Ready() = %v while /readyz says ok", err)
	}
	_ = peer
	// Draining: not ready, still alive.
	g := newGate()
	p := &proc{Node: n, name: "probed"}
	startService(t, p, "slow", g.service())
	call := callSlow(p, service.Name("slow"))
	recv(t, g.started, waitLong, "the request to start")
	stopped := stopInBackground(p)
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		if code, body := get(t, base+"/readyz"); code != 503 || body != "draining" {
			return fmt.Errorf("/readyz while draining = %d %q", code, body)
		}
		return nil
	})
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok" {
		t.Fatalf("/healthz while draining = %d %q", code, body)
	}
	close(g.release)
	recv(t, call, waitLong, "the call")
	recv(t, stopped, waitLong, "Stop")
	if err := n.Healthy(); err == nil {
		t.Fatal("Healthy() = nil after Stop")
	}
}

// A server with seeds is ready without peers once its grace period has
// passed: the first of a StatefulSet is not kept waiting for the rest.
func TestReadyAfterGrace(t *testing.T) {
	cfg := node.TestConfig("first")
	cfg.Gossip.Join = []string{"127.0.0.1:1"}
	cfg.ReadyGrace = 300 * time.Millisecond
	n := nodetest.Start(t, cfg)
	if err := n.Ready(); err == nil {
		t.Fatal("ready at once with seeds and no peer")
	}
	nodetest.WaitFor(t, nodetest.Wait, n.Ready)
}

// WaitSynced on a bridge waits for both of its endpoints.
func TestWaitSyncedCoversEveryEndpoint(t *testing.T) {
	front := nodetest.Start(t, node.Config{Name: "front", Listen: "127.0.0.1:0"})
	back := nodetest.Start(t, node.Config{Name: "back", Listen: "127.0.0.1:0", Group: "backend"})
	backAddr := back.Addr()
	back.Close() // not up yet
	bridge := nodetest.Start(t, node.Config{Name: "bridge", Servers: []string{front.Addr()}, Retry: 50 * time.Millisecond,
		Exchanges: []exchange.Config{{Group: "backend", Role: node.Client("").Role, Connect: []string{backAddr}, Retry: 50 * time.Millisecond}}})
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := bridge.WaitSynced(short)
	if err == nil || !strings.Contains(err.Error(), `"backend"`) {
		t.Fatalf("WaitSynced with the backend down: %v; want it to wait for group backend", err)
	}
	back2 := nodetest.Start(t, node.Config{Name: "back", Listen: backAddr, Group: "backend"})
	_ = back2
	if err := bridge.WaitSynced(ctxFor(t, waitLong)); err != nil {
		t.Fatal(err)
	}
}

// A member that leaves the gossip cluster keeps its links until it says
// bye (it drains meanwhile); one that is declared dead loses them at
// once (TestMeshDeadMemberDropped).
func TestLeftMemberKeepsLinkUntilBye(t *testing.T) {
	nodes := nodetest.Cluster(t, "m", 2)
	a, b := nodes[0], nodes[1]
	if _, err := b.Runtime().Start(context.Background(), "svc-b", service.SetupFunc(func(*service.Agent) error { return nil })); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		if len(a.Runtime().Lookup("svc-b")) != 1 {
			return errors.New("a does not see svc-b")
		}
		return nil
	})
	if err := b.Mesh().Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		for _, m := range a.Mesh().Members() {
			if m.Meta.Node == "m-2" && m.State == "alive" {
				return errors.New("a still sees m-2 alive in gossip")
			}
		}
		return nil
	})
	holdFor(t, 500*time.Millisecond, func() error {
		if len(a.Runtime().Lookup("svc-b")) != 1 || len(a.Links()) != 1 {
			return fmt.Errorf("a dropped b when it left gossip: links %v", a.Links())
		}
		return nil
	})
	b.Close()
	nodetest.WaitFor(t, nodetest.Wait, func() error {
		if len(a.Runtime().Lookup("svc-b")) != 0 {
			return errors.New("a still sees svc-b after b's bye")
		}
		return nil
	})
}

var _ console.Node = (*node.Node)(nil)
