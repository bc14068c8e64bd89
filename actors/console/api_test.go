package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestNode(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv, NodeInfo: func() map[string]any {
		return map[string]any{"gossip": "127.0.0.1:7946", "version": "v9.9.9-test"}
	}})
	var n map[string]any
	getJSON(t, c.URL()+"api/node", &n)
	rt := p.srv.Runtime()
	for k, want := range map[string]any{
		"name": "srv", "process": rt.ProcessID().String(), "listen": p.srv.Addr(), "console": c.Addr(),
		"gossip": "127.0.0.1:7946", "version": "v9.9.9-test", "group": "", "links": 1.0, "token": false,
	} {
		if n[k] != want {
			t.Errorf("%s = %#v, want %#v (%v)", k, n[k], want, n)
		}
	}
	if g, ok := n["groups"].([]any); !ok || len(g) != 1 || g[0] != "" {
		t.Errorf("groups = %#v", n["groups"])
	}
	if s, _ := n["uptime"].(string); s == "" {
		t.Errorf("no uptime: %v", n)
	}
	if up, _ := n["uptime_seconds"].(float64); up <= 0 {
		t.Errorf("uptime_seconds = %v", n["uptime_seconds"])
	}
	xs, _ := n["exchanges"].([]any)
	if len(xs) != 1 || xs[0].(map[string]any)["role"] != "server" || xs[0].(map[string]any)["listen"] != p.srv.Addr() {
		t.Errorf("exchanges = %#v", n["exchanges"])
	}
}

// find returns the first node of the tree that matches.
func find(t *TreeNode, match func(*TreeNode) bool) *TreeNode {
	if match(t) {
		return t
	}
	for _, c := range t.Children {
		if f := find(c, match); f != nil {
			return f
		}
	}
	return nil
}

func count(t *TreeNode) int {
	n := 1
	for _, c := range t.Children {
		n += count(c)
	}
	return n
}

func TestTree(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	var root TreeNode
	getJSON(t, c.URL()+"api/tree", &root)
	if root.Name != "srv" || root.PID != "node" || root.Kind != "node" || root.Messages != nil {
		t.Fatalf("root: %+v", root)
	}
	// Every live actor is in the tree, once.
	if got, want := count(&root)-1, len(p.srv.Runtime().Kernel().Tree().Snapshot()); got != want {
		t.Errorf("%d actors in the tree, the runtime has %d", got, want)
	}
	kinds := map[string]string{}
	for _, c := range root.Children {
		kinds[c.Name] = c.Kind
	}
	if kinds["registry"] != "registry" || kinds["services"] != "supervisor" || kinds["exchange"] != "exchange" {
		t.Errorf("top level: %v", kinds)
	}
	x := find(&root, func(n *TreeNode) bool { return n.Kind == registry.KindExchange })
	if len(x.Children) != 1 {
		t.Fatalf("exchange children: %+v", x.Children)
	}
	conn := x.Children[0]
	if conn.Kind != registry.KindConnection || conn.Detail["peer"] != "cli" || conn.Detail["state"] != "active" ||
		!strings.HasPrefix(conn.PID, "exchange/link-") || conn.Messages == nil || conn.Mailbox == nil {
		t.Errorf("connection: %+v", conn)
	}
	math := find(&root, func(n *TreeNode) bool { return n.Kind == registry.KindService && n.Name == "math" })
	if math == nil {
		t.Fatal("no math in the tree")
	}
	addr := p.srv.Runtime().Lookup("math")[0].Address
	if math.Detail["address"] != addr.String() || math.Detail["audience"] != "*" || fmt.Sprint(math.Detail["groups"]) != "[web]" {
		t.Errorf("math: %+v", math)
	}
	if len(math.Children) != 1 || math.Children[0].Kind != registry.KindActor || math.Children[0].Name != "worker" {
		t.Errorf("math's children: %+v", math.Children)
	}
	if math.Since.IsZero() || math.Messages == nil {
		t.Errorf("math's counters: %+v", math)
	}
	hidden := find(&root, func(n *TreeNode) bool { return n.Name == "hidden" })
	if hidden == nil || hidden.Detail["audience"] != "" {
		t.Errorf("hidden: %+v", hidden)
	}

	// The tree is live: a new service shows, a stopped one goes, and so
	// does a link.
	ctx := context.Background()
	a, err := p.srv.Runtime().Start(ctx, "late", service.SetupFunc(func(*service.Agent) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	getJSON(t, c.URL()+"api/tree", &root)
	if find(&root, func(n *TreeNode) bool { return n.Name == "late" && n.Kind == registry.KindService }) == nil {
		t.Error("a new service is not in the tree")
	}
	if err := p.srv.Runtime().StopService(ctx, a); err != nil {
		t.Fatal(err)
	}
	getJSON(t, c.URL()+"api/tree", &root)
	if find(&root, func(n *TreeNode) bool { return n.Name == "late" }) != nil {
		t.Error("a stopped service is still in the tree")
	}
	p.stopCli()
	waitFor(t, 10*time.Second, func() error {
		var root TreeNode
		getJSON(t, c.URL()+"api/tree", &root)
		if n := find(&root, func(n *TreeNode) bool { return n.Kind == registry.KindConnection }); n != nil {
			return fmt.Errorf("the connection is still there: %+v", n)
		}
		return nil
	})
}

func TestServices(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	var list []map[string]any
	getJSON(t, c.URL()+"api/services", &list)
	byName := map[string]map[string]any{}
	for _, s := range list {
		for _, k := range []string{"name", "address", "audience", "groups", "node", "process", "location", "local", "hops", "exchange_group"} {
			if _, ok := s[k]; !ok {
				t.Errorf("binding lacks %q: %v", k, s)
			}
		}
		byName[s["name"].(string)] = s
	}
	srvProc, cliProc := p.srv.Runtime().ProcessID().String(), p.cli.Runtime().ProcessID().String()
	m := byName["math"]
	if m["location"] != "local" || m["local"] != true || m["node"] != "srv" || m["process"] != srvProc ||
		fmt.Sprint(m["groups"]) != "[web]" || m["audience"] != "*" {
		t.Errorf("math: %v", m)
	}
	e := byName["echo"]
	links := p.srv.Links()
	if e["location"] != "remote" || e["node"] != "cli" || e["process"] != cliProc || e["hops"] != 1.0 ||
		len(links) != 1 || e["link"] != links[0].ID || fmt.Sprint(e["groups"]) != "[]" {
		t.Errorf("echo: %v (links %v)", e, links)
	}
	if h := byName["hidden"]; h == nil || h["audience"] != "" {
		t.Errorf("hidden: %v", h)
	}
	// The client's console does not see the server's hidden service.
	cc := startConsole(t, Config{Node: p.cli})
	getJSON(t, cc.URL()+"api/services", &list)
	for _, s := range list {
		if s["name"] == "hidden" {
			t.Errorf("the client sees hidden: %v", s)
		}
	}
}

func TestConnections(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	var conns struct {
		Time      time.Time
		Links     []exchange.LinkStatus
		Targets   []map[string]any
		Exchanges []ExchangeInfo
	}
	getJSON(t, c.URL()+"api/connections", &conns)
	if len(conns.Links) != 1 || conns.Time.IsZero() || len(conns.Targets) != 0 || len(conns.Exchanges) != 1 {
		t.Fatalf("%+v", conns)
	}
	l := conns.Links[0]
	if l.RemoteNode != "cli" || l.Direction != "in" || l.State != "active" || l.RemoteProcess != p.cli.Runtime().ProcessID() ||
		l.Role != "client" || l.FramesIn == 0 || l.BytesOut == 0 {
		t.Errorf("link: %+v", l)
	}
	// The client dials the server: its console lists the target.
	cc := startConsole(t, Config{Node: p.cli})
	getJSON(t, cc.URL()+"api/connections", &conns)
	if len(conns.Targets) != 1 || conns.Targets[0]["address"] != p.srv.Addr() || conns.Targets[0]["state"] != "linked" ||
		len(conns.Links) != 1 || conns.Links[0].Direction != "out" {
		t.Errorf("client: %+v", conns)
	}
	// The counters move with traffic.
	before := conns.Links[0].FramesOut
	if _, err := p.cli.Runtime().Call(context.Background(), service.Name("math"), "multiply", 2, 3); err != nil {
		t.Fatal(err)
	}
	getJSON(t, cc.URL()+"api/connections", &conns)
	if conns.Links[0].FramesOut <= before {
		t.Errorf("messages out %d, before the call %d", conns.Links[0].FramesOut, before)
	}
}

func TestMembers(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	if r := get(t, c.URL()+"api/members"); r.status != 200 || string(r.body) != "[]" {
		t.Errorf("no cluster: %s", r)
	}
	type member struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	var nilMembers []member
	c2 := startConsole(t, Config{Node: p.srv, Members: func() any { return nilMembers }})
	if r := get(t, c2.URL()+"api/members"); string(r.body) != "[]" {
		t.Errorf("nil slice: %s", r)
	}
	c3 := startConsole(t, Config{Node: p.srv, Members: func() any {
		return []member{{"srv", "alive"}, {"other", "suspect"}}
	}})
	var got []member
	getJSON(t, c3.URL()+"api/members", &got)
	if len(got) != 2 || got[1] != (member{"other", "suspect"}) {
		t.Errorf("members: %+v", got)
	}
	body := string(get(t, c3.URL()+"metrics").body)
	for _, want := range []string{`netsvc_members{state="alive"} 1`, `netsvc_members{state="suspect"} 1`, `netsvc_members{state="dead"} 0`} {
		if !strings.Contains(body, "\n"+want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	ctx := context.Background()
	if _, err := p.srv.Runtime().Start(ctx, "reader", service.SetupFunc(func(a *service.Agent) error {
		if _, err := a.Subscribe(service.Name("math"), "news.*", func(service.Report) {}); err != nil {
			return err
		}
		a.Watch(service.Group("web"), func(service.RegistryEvent) {})
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	var in registry.Interests
	waitFor(t, 10*time.Second, func() error {
		getJSON(t, c.URL()+"api/subscriptions", &in)
		if len(in.Subscriptions) != 1 || in.Subscriptions[0].SubscriberName != "reader" || in.Subscriptions[0].Pattern != "news.*" ||
			in.Subscriptions[0].Target != "math" || len(in.Subscriptions[0].Publishers) != 1 {
			return fmt.Errorf("subscriptions: %+v", in.Subscriptions)
		}
		for _, w := range in.Watches {
			if w.WatcherName == "reader" && w.Target == "group web" {
				return nil
			}
		}
		return fmt.Errorf("watches: %+v", in.Watches)
	})
}

func TestMetrics(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	ctx := context.Background()
	if _, err := p.srv.Runtime().Call(ctx, service.Name("nope"), "x"); err == nil {
		t.Fatal("no failure")
	}
	if _, err := p.srv.Runtime().Call(ctx, service.Name("echo"), "echo", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.srv.Runtime().Call(ctx, service.Name("math"), "multiply", 6, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := p.srv.Runtime().Call(ctx, service.Name("math"), "multiply", 6); service.AsFailure(err).Code != service.CodeBadArguments {
		t.Fatalf("multiply(6): %v", err)
	}
	// The services API counts what local services served (the page
	// shows calls per second from it).
	var svcs []ServiceInfo
	getJSON(t, c.URL()+"api/services", &svcs)
	for _, s := range svcs {
		if s.Name == "math" && s.Local && (s.Calls == nil || *s.Calls != 2) {
			t.Errorf("math served %v calls, want 2", s.Calls)
		}
		if !s.Local && s.Calls != nil {
			t.Errorf("a remote service with calls: %+v", s)
		}
	}
	r := get(t, c.URL()+"metrics")
	// What promtool check metrics checks (it runs promlint), on scrapes
	// taken while calls run.
	lint := func(body []byte) {
		t.Helper()
		// (The helper trimmed the final newline the format ends with.)
		problems, err := promlint.New(bytes.NewReader(append(body, '\n'))).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			if strings.HasPrefix(pr.Metric, "netsvc_") {
				t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
			}
		}
	}
	lint(r.body)
	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for load.Err() == nil {
				p.cli.Runtime().Call(load, service.Name("math"), "multiply", 6, 7)
			}
		}()
	}
	for range 5 {
		lint(get(t, c.URL()+"metrics").body)
	}
	stopLoad()
	wg.Wait()
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %v", r.status, r.header)
	}
	body := "\n" + string(r.body) + "\n"
	for _, re := range []string{
		// The client is counted among "clients", never by the name it
		// gave itself.
		`netsvc_link_messages_total\{direction="in",group="",peer="clients"\} [1-9]`,
		`netsvc_link_messages_total\{direction="out",group="",peer="clients"\} [1-9]`,
		`netsvc_link_bytes_total\{direction="out",group="",peer="clients"\} [1-9]`,
		`netsvc_link_drops_total\{group="",peer="clients"\} 0`,
		`netsvc_link_up\{group="",peer="clients"\} 1`,
		`netsvc_link_refusals_total\{group="",reason="token"\} 0`,
		`netsvc_node_budget_used\{resource="bindings"\} [1-9]`,
		`netsvc_node_budget_limit\{resource="queued_bytes"\} 2.68435456e\+08`,
		`netsvc_service_dropped_total\{service="math"\} 0`,
		`netsvc_service_refused_total\{service="math"\} 0`,
		`netsvc_services_stuck 0`,
		`netsvc_links\{group="",state="active"\} 1`,
		`netsvc_requests_total [1-9]`,
		`netsvc_failures_total\{code="46",description="no such service"\} 1`,
		`netsvc_registry_bindings 4`,
		`netsvc_local_services 3`,
		`netsvc_members\{state="alive"\} 0`,
		`netsvc_members\{state="dead"\} 0`,
		// Per method: every request served, failures by code, time.
		`netsvc_service_calls_total\{method="multiply",service="math"\} 2`,
		`netsvc_service_call_failures_total\{code="56",method="multiply",service="math"\} 1`,
		`netsvc_service_call_seconds_bucket\{method="multiply",service="math",le="\+Inf"\} 2`,
		`netsvc_service_call_seconds_count\{method="multiply",service="math"\} 2`,
		`netsvc_actors\{kind="connection"\} 1`,
		`netsvc_actors\{kind="service"\} 3`,
		`netsvc_uptime_seconds \d`,
		`netsvc_node_info\{node="srv",process="` + p.srv.Runtime().ProcessID().String() + `",version="[^"]+"\} 1`,
		`go_goroutines \d+`,
		`# HELP netsvc_link_drops_total Reports dropped because the peer was too slow`,
	} {
		if !regexp.MustCompile(`\n` + re).MatchString(body) {
			t.Errorf("metrics lack %s", re)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

// TestMetricsShowServiceDropsAndStuckHandlers is the run whose 6.7 M
// drops at a subscriber's service queue no metric showed: a subscriber
// that stops keeping up has its drops counted under its name, and a
// handler running past the slow-handler threshold shows as stuck.
func TestMetricsShowServiceDropsAndStuckHandlers(t *testing.T) {
	ctx := context.Background()
	n, err := startTestNode("n", service.Config{ServiceQueueLimit: 64 << 10, SlowHandler: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	rt := n.Runtime()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	if _, err := rt.Start(ctx, "feed", service.SetupFunc(func(a *service.Agent) error {
		a.Export("flood", func(n int) int {
			for i := range n {
				_ = a.Publish("tick", i)
			}
			return n
		})
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, "slow", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("feed"), "tick", func(service.Report) { <-gate })
		return err
	})); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, Config{Node: n})
	value := func(re string) float64 {
		m := regexp.MustCompile(`\n` + re + ` (\S+)`).FindStringSubmatch("\n" + string(get(t, c.URL()+"metrics").body))
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	waitFor(t, 10*time.Second, func() error {
		if _, err := rt.Call(ctx, service.Name("feed"), "flood", 5000); err != nil {
			return err
		}
		if v := value(`netsvc_service_dropped_total\{service="slow"\}`); v <= 0 {
			return fmt.Errorf("slow's drops read %v", v)
		}
		if v := value(`netsvc_services_stuck`); v != 1 {
			return fmt.Errorf("%v services stuck, want slow", v)
		}
		if v := value(`netsvc_service_busy_seconds\{service="slow"\}`); v <= 0 {
			return fmt.Errorf("slow busy for %v s", v)
		}
		return nil
	})
	release()
	waitFor(t, 10*time.Second, func() error {
		if v := value(`netsvc_services_stuck`); v != 0 {
			return fmt.Errorf("%v services still stuck once released", v)
		}
		return nil
	})
}

// TestMetricsSurviveReconnects checks that link counters, labelled by
// peer rather than by link, keep what closed links carried: a counter
// that fell back at each reconnect would read as a reset to Prometheus.
func TestMetricsSurviveReconnects(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	in := regexp.MustCompile(`\nnetsvc_link_messages_total\{direction="in",group="",peer="clients"\} (\d+)`)
	up := regexp.MustCompile(`\nnetsvc_link_up\{group="",peer="clients"\} (\d+)`)
	read := func(re *regexp.Regexp) int {
		m := re.FindStringSubmatch("\n" + string(get(t, c.URL()+"metrics").body))
		if m == nil {
			t.Fatalf("metrics lack %s", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	before := read(in)
	if before == 0 || read(up) != 1 {
		t.Fatalf("with the client linked: %d frames in, %d links up", before, read(up))
	}
	p.stopCli()
	waitFor(t, 10*time.Second, func() error {
		if n := read(up); n != 0 {
			return fmt.Errorf("%d client links up", n)
		}
		return nil
	})
	if after := read(in); after < before {
		t.Fatalf("frames in fell from %d to %d when the client's link closed", before, after)
	}
}

func TestBadRequests(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	u := c.URL()
	wantJSONError(t, get(t, u+"api/nope"), 404, "no such path: /api/nope")
	wantJSONError(t, get(t, u+"nothing/here"), 404, "no such path")
	wantJSONError(t, get(t, u+"static/app.js"), 404, "no such path")
	wantJSONError(t, get(t, u+"../../etc/passwd"), 404, "no such path")
	r := do(t, http.MethodPost, u+"api/node", "{}")
	wantJSONError(t, r, 405, "method not allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
	wantJSONError(t, do(t, http.MethodDelete, u+"api/tree", ""), 405, "use GET")
	wantJSONError(t, do(t, http.MethodPost, u+"metrics", ""), 405, "use GET")
	wantJSONError(t, do(t, http.MethodPut, u+"api/events", ""), 405, "use GET")
	// DNS rebinding: a page of another site whose name now points here.
	wantJSONError(t, get(t, u+"api/node", "Host", "evil.example:8080"), 421, "not loopback")
	// A cross-site form posting to the gateway.
	wantJSONError(t, do(t, http.MethodPost, u+"rpc/math/multiply", "[6,7]", "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"),
		403, "cross-origin")
	// Loopback names are fine.
	if r := get(t, u+"api/node", "Host", "localhost:1234"); r.status != 200 {
		t.Errorf("localhost: %s", r)
	}
}

func TestStaticPage(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	r := get(t, c.URL())
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s", r)
	}
	page := string(r.body)
	for _, want := range []string{"<title>netsvc console</title>", `href="style.css"`, `src="app.js"`, `id="tree"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP: %q", csp)
	}
	for path, ct := range map[string]string{"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"} {
		r := get(t, c.URL()+path)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ct) || len(r.body) < 500 {
			t.Errorf("%s: %d %q %d bytes", path, r.status, r.header.Get("Content-Type"), len(r.body))
		}
		// Nothing is fetched from elsewhere.
		if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|https?://`).Match(r.body) {
			t.Errorf("%s refers to another site", path)
		}
	}
}
