package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

func TestCallMultiply(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "call", "--server", n.Addr(), "math", "multiply", "6", "7")
	if r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
		t.Fatal(r)
	}
	// Flags may follow the arguments; floats work and whole results are integers.
	r = runCmd(context.Background(), "call", "math", "multiply", "1.5", "2", "--server", n.Addr())
	if r.code != 0 || r.stdout != "3\n" {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "call", "--server", n.Addr(), "math", "add", "-1", "0.5")
	if r.code != 0 || r.stdout != "-0.5\n" {
		t.Fatal(r)
	}
}

func TestCallEchoAndSleep(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "call", "--server", n.Addr(), "math", "echo", `{"a":[1,2.5,"x",null,true],"b":{"c":"<d>"}}`)
	if r.code != 0 || r.stdout != `{"a":[1,2.5,"x",null,true],"b":{"c":"<d>"}}`+"\n" {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "call", "--server", n.Addr(), "math", "sleep", "100")
	if r.code != 0 || r.stdout != "100\n" || r.took < 100*time.Millisecond {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "call", "--server", n.Addr(), "--timeout", "300ms", "math", "sleep", "5000")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "call failed: 47 timed out: ") || r.took > 3*time.Second {
		t.Fatal(r)
	}
}

func TestCallWrongArgumentCount(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "call", "--server", n.Addr(), "math", "multiply", "6")
	want := "call failed: 56 bad arguments: multiply: expected 2 arguments, received 1\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Fatalf("want %q\n%v", want, r)
	}
	r = runCmd(context.Background(), "call", "--server", n.Addr(), "math", "multiply", `"six"`, "7")
	if r.code != 1 || r.stderr != "call failed: 56 bad arguments: multiply: argument 1 is a string, want a number\n" {
		t.Fatal(r)
	}
}

func TestCallUnknownServiceAndMethod(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "call", "--server", n.Addr(), "nosuch", "foo")
	if r.code != 1 || r.stderr != "call failed: 46 no such service: no service named \"nosuch\"\n" {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "call", "--server", n.Addr(), "math", "divide", "1", "2")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "call failed: 55 no such method: ") {
		t.Fatal(r)
	}
}

func TestCallWrongGroupFailsFast(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "call", "--server", n.Addr(), "--group", "other", "math", "multiply", "6", "7")
	if r.code != 1 || !strings.Contains(r.stderr, "exchange group mismatch") || len(lines(r.stderr)) != 1 {
		t.Fatal(r)
	}
	if r.took > 2*time.Second {
		t.Fatalf("took %v to fail; want well under the 10s timeout", r.took)
	}
	// And the other way round: a client of "" against a server of "blue".
	b := startServer(t, "b", "blue", true)
	r = runCmd(context.Background(), "call", "--server", b.Addr(), "math", "multiply", "6", "7")
	if r.code != 1 || !strings.Contains(r.stderr, "exchange group mismatch") || !strings.Contains(r.stderr, "group blue") || r.took > 2*time.Second {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "call", "--server", b.Addr(), "--group", "blue", "math", "multiply", "6", "7")
	if r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
}

func TestCallUnreachableServer(t *testing.T) {
	r := runCmd(context.Background(), "call", "--server", "127.0.0.1:1", "--timeout", "300ms", "math", "multiply", "6", "7")
	if r.code != 1 || !strings.Contains(r.stderr, "no link to 127.0.0.1:1 within 300ms") || len(lines(r.stderr)) != 1 {
		t.Fatal(r)
	}
}

func TestHiddenOnlyInsideItsNode(t *testing.T) {
	n := startServer(t, "a", "", true)
	ctx := context.Background()
	v, err := service.CallFor[string](ctx, n.Runtime(), service.Name("hidden"), "echo", "inside")
	if err != nil || v != "inside" {
		t.Fatal(v, err)
	}
	r := runCmd(ctx, "call", "--server", n.Addr(), "hidden", "echo", `"outside"`)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "call failed: 46 no such service") {
		t.Fatal(r)
	}
}

func TestServicesJSON(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "services", "--server", n.Addr(), "--json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err, r)
	}
	byName := map[string]map[string]any{}
	for _, b := range list {
		for _, k := range []string{"name", "address", "audience", "groups", "node", "process", "location"} {
			if _, ok := b[k]; !ok {
				t.Errorf("binding without %q: %v", k, b)
			}
		}
		byName[b["name"].(string)] = b
	}
	if len(list) != 2 || byName["math"] == nil || byName["seed"] == nil || byName["hidden"] != nil {
		t.Fatalf("want math and seed only:\n%s", r.stdout)
	}
	m := byName["math"]
	proc := n.Runtime().ProcessID().String()
	if m["node"] != "a" || m["process"] != proc || m["location"] != "local" || m["audience"] != "*" ||
		fmt.Sprint(m["groups"]) != "[web-services]" || !strings.HasPrefix(m["address"].(string), proc+"/") {
		t.Fatalf("math: %v", m)
	}
}

func TestServicesTable(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "services", "--server", n.Addr())
	l := lines(r.stdout)
	if r.code != 0 || len(l) != 3 {
		t.Fatal(r)
	}
	if !regexp.MustCompile(`^NAME +ADDRESS +AUDIENCE +GROUPS +NODE +LOCATION +HOPS$`).MatchString(l[0]) ||
		!regexp.MustCompile(`^math +[0-9a-f]{16}/\d+ +\* +web-services +a +local +0$`).MatchString(l[1]) ||
		!regexp.MustCompile(`^seed +[0-9a-f]{16}/\d+ +\* +- +a +local +0$`).MatchString(l[2]) {
		t.Fatal(r)
	}
}

func TestSubscribeCount(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "subscribe", "--server", n.Addr(), "--count", "2", "seed", "next")
	l := lines(r.stdout)
	if r.code != 0 || len(l) != 2 || r.stderr != "" {
		t.Fatal(r)
	}
	last := 0.0
	for _, line := range l {
		var rep struct {
			Publisher, Address, Subject, Pattern string
			Value                                map[string]any
		}
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			t.Fatal(err, line)
		}
		count, _ := rep.Value["count"].(float64)
		if rep.Publisher != "seed" || rep.Subject != "next" || rep.Pattern != "next" || count <= last ||
			rep.Value["time"] == nil || rep.Value["value"] == nil || !strings.HasPrefix(rep.Address, n.Runtime().ProcessID().String()) {
			t.Fatalf("report %s", line)
		}
		last = count
	}
}

// Subscribing to a name nobody has yet waits for it, and says so.
func TestSubscribeBeforePublisherSaysSo(t *testing.T) {
	n := startServer(t, "a", "", false)
	sub := runBackground(t, "subscribe", "--server", n.Addr(), "--count", "1", "ghost", "status")
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if want := `netsvc subscribe: no service named "ghost" yet; waiting for it`; !strings.Contains(sub.err.String(), want) {
			return fmt.Errorf("stderr %q lacks %q", sub.err.String(), want)
		}
		return nil
	})
	pub := runBackground(t, "publish", "--server", n.Addr(), "--as", "ghost", "status", `"here"`, "--lifetime", "1m")
	r := sub.wait(t, 20*time.Second)
	if r.code != 0 || !strings.Contains(r.stdout, `"publisher":"ghost"`) || len(lines(r.stderr)) != 1 {
		t.Fatal(r)
	}
	pub.stop(t)
}

func TestSubscribeGetsRetainedInit(t *testing.T) {
	n := startServer(t, "a", "", true)
	r := runCmd(context.Background(), "subscribe", "--server", n.Addr(), "--count", "1", "seed", "init")
	if r.code != 0 || !strings.Contains(r.stdout, `"subject":"init","pattern":"init","value":{"time":`) {
		t.Fatal(r)
	}
	// Without a pattern: every subject, the kept init first.
	r = runCmd(context.Background(), "subscribe", "--server", n.Addr(), "--count", "1", "seed")
	if r.code != 0 || !strings.Contains(r.stdout, `"subject":"init","pattern":">","value":{"time":`) {
		t.Fatal(r)
	}
}

func TestPublishRetainedToLateSubscriber(t *testing.T) {
	n := startServer(t, "a", "", false)
	pub := runBackground(t, "publish", "--server", n.Addr(), "--as", "keeper", "status", `{"ready":true}`, "--lifetime", "1m")
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if len(n.Runtime().Lookup("keeper")) == 0 {
			return fmt.Errorf("keeper not visible on the node; publish stderr: %s", pub.err.String())
		}
		return nil
	})
	r := runCmd(context.Background(), "subscribe", "--server", n.Addr(), "--count", "1", "keeper", "status")
	if r.code != 0 || !strings.Contains(r.stdout, `"publisher":"keeper"`) || !strings.Contains(r.stdout, `"subject":"status","pattern":"status","value":{"ready":true}}`) {
		t.Fatal(r)
	}
	pr := pub.stop(t)
	if pr.code != 0 || pr.stdout != "" {
		t.Fatal(pr)
	}
	nodetest.WaitFor(t, 5*time.Second, func() error {
		if len(n.Runtime().Lookup("keeper")) != 0 {
			return fmt.Errorf("keeper still visible after the publisher stopped")
		}
		return nil
	})
}

func TestPublishReachesWaitingSubscriber(t *testing.T) {
	n := startServer(t, "a", "", false)
	sub := runBackground(t, "subscribe", "--server", n.Addr(), "--count", "1", "news", "sport.*")
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if len(n.Links()) == 0 {
			return fmt.Errorf("the subscriber has not linked")
		}
		return nil
	})
	r := runCmd(context.Background(), "publish", "--server", n.Addr(), "--as", "news", "sport.tennis", `"set point"`, "--wait", "10s")
	if r.code != 0 || r.stdout != "published sport.tennis to 1 subscription\n" || r.stderr != "" {
		t.Fatal(r)
	}
	if r.took > 5*time.Second {
		t.Errorf("publish took %v: it should publish once the subscriber subscribed, not wait out --wait", r.took)
	}
	sr := sub.wait(t, 10*time.Second)
	if sr.code != 0 || !strings.Contains(sr.stdout, `"subject":"sport.tennis","pattern":"sport.*","value":"set point"}`) {
		t.Fatal(sr)
	}
}

// TestPublishToNobody: publish says when nobody got the report, and with
// --require-subscriber fails.
func TestPublishToNobody(t *testing.T) {
	n := startServer(t, "a", "", false)
	r := runCmd(context.Background(), "publish", "--server", n.Addr(), "--as", "lonely", "s", "1", "--wait", "100ms")
	if r.code != 0 || r.stdout != "published s to nobody: no subscription matched within 100ms\n" {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "publish", "--server", n.Addr(), "--as", "lonely", "s", "1", "--wait", "100ms", "--require-subscriber")
	if r.code != 1 || r.stderr != "netsvc publish: nobody subscribed to s within 100ms (--require-subscriber)\n" {
		t.Fatal(r)
	}
}

func TestNodeCommand(t *testing.T) {
	b := runBackground(t, "node", "--name", "n1", "--listen", "127.0.0.1:0", "--demo", "--demo-interval", "50ms",
		"--gossip", "off", "--console", "off", "--log-level", "debug")
	re := regexp.MustCompile(`netsvc node "n1" listening on (127\.0\.0\.1:\d+) \(the default group\)`)
	var addr string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		m := re.FindStringSubmatch(b.err.String())
		if m == nil {
			return fmt.Errorf("no listening line yet: %s", b.err.String())
		}
		addr = m[1]
		return nil
	})
	r := runCmd(context.Background(), "call", "--server", addr, "math", "multiply", "6", "7")
	if r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
	nr := b.stop(t)
	if nr.code != 0 || nr.stdout != "" {
		t.Fatal(nr)
	}
	for _, want := range []string{"demo services started", "link up", "link down", "stopped"} {
		if !strings.Contains(nr.stderr, want) {
			t.Errorf("node log lacks %q:\n%s", want, nr.stderr)
		}
	}
}

// TestNodeJSONLogs: with --log-format json every line on stderr is one
// JSON object (no lines for humans among them), and the node works.
func TestNodeJSONLogs(t *testing.T) {
	b := runBackground(t, "node", "--name", "j1", "--listen", "127.0.0.1:0", "--demo",
		"--gossip", "off", "--console", "off", "--log-format", "json")
	var addr string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		for _, line := range strings.Split(b.err.String(), "\n") {
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "node started" {
				addr = rec.Listen
				return nil
			}
		}
		return fmt.Errorf("no node started record yet: %s", b.err.String())
	})
	if r := runCmd(context.Background(), "call", "--server", addr, "math", "multiply", "6", "7"); r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
	nr := b.stop(t)
	lines := strings.Split(strings.TrimSpace(nr.stderr), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil {
			t.Errorf("not a JSON log record: %q", line)
		}
	}
	if nr.code != 0 || len(lines) < 3 {
		t.Fatalf("exit %d, %d lines", nr.code, len(lines))
	}
}

func TestNodeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"node", "--log-format", "yaml"},
		{"node", "--listen", "nowhere"},
		{"node", "--retry", "0s"},
		{"node", "--drain-timeout", "0s"},
		{"node", "--log-level", "loud"},
		{"node", "--gossip-key", "c2hvcnQ="},
		{"node", "--console", "0.0.0.0:8080"},
		{"node", "--gossip", "off", "--join", "127.0.0.1:7946"},
		{"node", "--gossip-preset", "wan"},
		{"node", "--advertise", "nowhere"},
		{"node", "extra"},
	} {
		r := runCmd(context.Background(), args...)
		if r.code != 2 || len(lines(r.stderr)) != 2 || !strings.HasPrefix(r.stderr, "netsvc node: ") {
			t.Errorf("%v: %v", args, r)
		}
	}
	// Valid extras are accepted.
	cfg := nodeFlags{name: "x", listen: "127.0.0.1:0", retry: time.Second, drainTimeout: time.Second, demoInterval: time.Second, logLevel: "warn",
		gossip: "127.0.0.1:7946", join: listFlag{"10.0.0.1:7946"}, gossipKey: settingValue{vals: []string{"MDEyMzQ1Njc4OWFiY2RlZg=="}},
		console: "0.0.0.0:8080", consoleToken: settingValue{vals: []string{"secret"}}, presetName: "fast"}
	if err := cfg.validate(); err != nil || len(cfg.secretKey) != 16 || cfg.preset != cluster.Fast {
		t.Fatal(err, cfg.preset)
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	r := runCmd(ctx)
	if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Commands:") || r.stderr != "" {
		t.Fatal(r)
	}
	r = runCmd(ctx, "help", "call")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: netsvc call --server HOST:PORT") || !strings.Contains(r.stdout, "-timeout") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "call", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: netsvc call") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "frobnicate")
	if r.code != 2 || r.stderr != "netsvc: unknown command \"frobnicate\"\nrun 'netsvc help' for usage\n" {
		t.Fatal(r)
	}
	r = runCmd(ctx, "call", "--bogus", "math", "x")
	if r.code != 2 || r.stderr != "netsvc call: flag provided but not defined: -bogus\nrun 'netsvc help call' for usage\n" {
		t.Fatal(r)
	}
	r = runCmd(ctx, "call", "math")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "netsvc call: want SERVICE METHOD") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "call", "math", "echo", "hello")
	if r.code != 2 || !strings.Contains(r.stderr, `argument 1: "hello" is not JSON`) {
		t.Fatal(r)
	}
	r = runCmd(ctx, "publish", "subject", "1")
	if r.code != 2 || !strings.Contains(r.stderr, "--as SERVICE is required") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "bench", "--mode", "fast")
	if r.code != 2 || !strings.Contains(r.stderr, `--mode "fast"`) {
		t.Fatal(r)
	}
	r = runCmd(ctx, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "netsvc ") {
		t.Fatal(r)
	}
}

// A command whose node is down (or still starting) says it is waiting,
// once, after a second, and links as soon as the node is up.
func TestCallWaitsForNodeVisibly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there until the node below starts

	r := runCmd(context.Background(), "call", "--server", addr, "--timeout", "1500ms", "math", "multiply", "6", "7")
	l := lines(r.stderr)
	if r.code != 1 || len(l) != 2 || !strings.HasPrefix(l[0], "netsvc call: waiting for "+addr+" (") ||
		!strings.HasSuffix(l[0], "giving up after 1.5s") || !strings.Contains(l[1], "no link to "+addr+" within 1.5s") {
		t.Fatal(r)
	}

	call := runBackground(t, "call", "--server", addr, "--timeout", "20s", "math", "multiply", "6", "7")
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(call.err.String(), "waiting for "+addr) {
			return fmt.Errorf("not waiting yet: %q", call.err.String())
		}
		return nil
	})
	ctx := context.Background()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	// Links are accepted once math runs: a call that linked before would
	// find no math and fail at once, as it should.
	gate := &gatedListener{Listener: ln, open: make(chan struct{})}
	xc := node.Server("", addr)
	xc.Listener = gate
	n, err := node.Start(ctx, node.Config{Name: "late", Exchanges: []exchange.Config{xc}})
	if err != nil {
		gate.Open()
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Open(); stopNode(n) })
	if err := startDemo(ctx, n.Runtime(), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	gate.Open()
	if r := call.wait(t, 20*time.Second); r.code != 0 || r.stdout != "42\n" || len(lines(r.stderr)) != 1 {
		t.Fatal(r)
	}
}

// gatedListener accepts nothing until Open is called.
type gatedListener struct {
	net.Listener
	open chan struct{}
	once sync.Once
}

func (g *gatedListener) Accept() (net.Conn, error) {
	<-g.open
	return g.Listener.Accept()
}

func (g *gatedListener) Open() { g.once.Do(func() { close(g.open) }) }

func TestParseFlagsInterspersed(t *testing.T) {
	// "--" ends the flags: the call runs (and fails to link).
	r := runCmd(context.Background(), "call", "--server", "127.0.0.1:1", "--timeout=50ms", "--", "math", "--not-a-flag")
	if r.code != 1 || !strings.Contains(r.stderr, "no link to 127.0.0.1:1 within 50ms") {
		t.Fatal(r)
	}
}

// fakeConsole serves the console's API paths the CLI reads.
func fakeConsole(t *testing.T, services, tree string) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, services)
	})
	mux.HandleFunc("GET /api/tree", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, tree)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

func TestServicesFromConsole(t *testing.T) {
	services := `[{"name":"math","address":"00000000000000aa/1","audience":"*","groups":["web-services"],"local":true,"node":"a","hops":0,"process":"00000000000000aa","location":"local","link":""},
{"name":"echo","address":"00000000000000bb/3","audience":"blue","groups":[],"local":false,"node":"b","hops":1,"process":"00000000000000bb","location":"remote","link":"link-7"}]`
	url := fakeConsole(t, services, `{}`)
	r := runCmd(context.Background(), "services", "--console", url)
	l := lines(r.stdout)
	if r.code != 0 || len(l) != 3 ||
		!regexp.MustCompile(`^echo +00000000000000bb/3 +blue +- +b +remote +1$`).MatchString(l[1]) ||
		!regexp.MustCompile(`^math +00000000000000aa/1 +\* +web-services +a +local +0$`).MatchString(l[2]) {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "services", "--console", strings.TrimPrefix(url, "http://"), "--json")
	var list []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 2 || list[1]["link"] != "link-7" {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "services", "--console", url+"/nothing-here")
	if r.code != 1 || !strings.Contains(r.stderr, "404 Not Found") || len(lines(r.stderr)) != 1 {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "services", "--console", url, "--server", "127.0.0.1:1")
	if r.code != 2 {
		t.Fatal(r)
	}
}

func TestTreeFromConsole(t *testing.T) {
	tree := `{"name":"a","pid":"nonhost/a","kind":"node","children":[
	 {"name":"registry","pid":"nonhost/registry","kind":"registry","messages":12,"children":[]},
	 {"name":"services","pid":"nonhost/services","kind":"supervisor","children":[
	   {"name":"math","pid":"nonhost/services/math#1","kind":"service","mailbox":0}]}]}`
	url := fakeConsole(t, `[]`, tree)
	r := runCmd(context.Background(), "tree", "--console", url)
	want := `a [node] nonhost/a
  registry [registry] nonhost/registry messages=12
  services [supervisor] nonhost/services
    math [service] nonhost/services/math#1 mailbox=0
`
	if r.code != 0 || r.stdout != want {
		t.Fatalf("want\n%s\n%v", want, r)
	}
	r = runCmd(context.Background(), "tree", "--console", url, "--json")
	if r.code != 0 || !json.Valid([]byte(r.stdout)) {
		t.Fatal(r)
	}
	// Without --console: NETSVC_CONSOLE, else the local node's console.
	t.Setenv("NETSVC_CONSOLE", url)
	if r = runCmd(context.Background(), "tree"); r.code != 0 || r.stdout != want {
		t.Fatalf("tree from NETSVC_CONSOLE: %v", r)
	}
	t.Setenv("NETSVC_CONSOLE", "")
	if r = runCmd(context.Background(), "help", "tree"); !strings.Contains(r.stdout, "http://127.0.0.1:8080/") {
		t.Fatalf("tree's default console: %v", r)
	}
	if r = runCmd(context.Background(), "tree", "--console", ""); r.code != 2 {
		t.Fatal(r)
	}
}

func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	r := runCmd(context.Background(), "bench", "--mode", "rr", "--duration", "200ms", "--json")
	var res map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
		t.Fatal(r)
	}
	if res["mode"] != "rr" || res["requests_per_s"] == nil || res["p50_us"] == nil {
		t.Fatal(r)
	}
	r = runCmd(context.Background(), "bench", "--mode", "pub", "--duration", "200ms")
	if r.code != 0 || !strings.Contains(r.stdout, "received/s") {
		t.Fatal(r)
	}
	// Every report sent is received or counted dropped: the run waits
	// for no report that will never land.
	r = runCmd(context.Background(), "bench", "--mode", "pub", "--duration", "200ms", "--json")
	var pub benchResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &pub) != nil {
		t.Fatal(r)
	}
	if pub.Sent == 0 || pub.Received+int64(pub.Dropped) != pub.Sent {
		t.Fatalf("sent %d, received %d, dropped %d", pub.Sent, pub.Received, pub.Dropped)
	}
}

// TestBenchAgainstCluster: bench loads a running cluster (two meshed
// servers: the caller on the first, the service on the last) and leaves
// nothing of its own behind.
func TestBenchAgainstCluster(t *testing.T) {
	a := startServer(t, "a", "", false)
	b, err := node.Start(context.Background(), node.Config{Name: "b", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0", a.Addr())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(b) })
	for _, mode := range []string{"rr", "pub"} {
		r := runCmd(context.Background(), "bench", "--mode", mode, "--duration", "200ms", "--json", "--server", a.Addr(), "--server", b.Addr())
		var res map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil {
			t.Fatal(r)
		}
		got, _ := res["requests_per_s"].(float64)
		if mode == "pub" {
			got, _ = res["received_per_s"].(float64)
		}
		if got <= 0 || !strings.Contains(fmt.Sprint(res["peer"]), "cluster at "+a.Addr()) {
			t.Fatalf("%s against the cluster: %v", mode, r)
		}
	}
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if s := a.Runtime().Services(); len(s) != 0 {
			return fmt.Errorf("the bench left %v behind", s)
		}
		return nil
	})
}

// TestWatch: the registry's changes as JSON lines, those that exist
// first; a name narrows it.
func TestWatch(t *testing.T) {
	n := startServer(t, "a", "", true)
	// math appears, and joins its group; seed appears.
	r := runCmd(context.Background(), "watch", "--server", n.Addr(), "--count", "3")
	for _, want := range []string{`{"kind":"available","name":"math",`, `{"kind":"joined","name":"math",`, `{"kind":"available","name":"seed",`} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("watch lacks %s: %v", want, r)
		}
	}
	w := runBackground(t, "watch", "--server", n.Addr(), "--count", "2", "late")
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if len(n.Links()) == 0 {
			return fmt.Errorf("the watcher has not linked")
		}
		return nil
	})
	addr, err := n.Runtime().Start(context.Background(), "late", service.SetupFunc(func(*service.Agent) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(w.out.String(), `"kind":"available","name":"late"`) {
			return fmt.Errorf("no available line yet: %q", w.out.String())
		}
		return nil
	})
	if err := n.Runtime().StopService(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	wr := w.wait(t, 10*time.Second)
	if wr.code != 0 || !strings.Contains(wr.stdout, `"kind":"withdrawn","name":"late"`) || strings.Contains(wr.stdout, "math") {
		t.Fatal(wr)
	}
}

// TestClientMetricsAndLogs: a long-running client command serves its
// process's /metrics with --metrics, and logs the library's lines with
// --log-level.
func TestClientMetricsAndLogs(t *testing.T) {
	n := startServer(t, "a", "", true)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sub := runBackground(t, "subscribe", "--server", n.Addr(), "--metrics", addr, "--log-level", "info", "--log-format", "json", "seed", "next")
	var body string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		body = string(b)
		if !strings.Contains(body, `netsvc_link_up{group="",peer="a"} 1`) {
			return fmt.Errorf("no link to a in the client's metrics yet")
		}
		return nil
	})
	r := sub.stop(t)
	if !strings.Contains(r.stderr, `"msg":"link up"`) {
		t.Errorf("no JSON link-up line with --log-level info --log-format json: %q", r.stderr)
	}
	if r := runCmd(context.Background(), "call", "--log-level", "loud", "math", "multiply", "6", "7"); r.code != 2 {
		t.Errorf("--log-level loud: %v", r)
	}
}

// TestHelpAndCompletion: help shows flags as --flag and examples; the
// bash completion script loads in bash and knows the commands' flags.
func TestHelpAndCompletion(t *testing.T) {
	ctx := context.Background()
	for _, c := range commands() {
		r := runCmd(ctx, "help", c.name)
		if r.code != 0 || !strings.Contains(r.stdout, "\nExamples:\n  netsvc") {
			t.Errorf("help %s has no examples: %v", c.name, r)
		}
		if c.name == "call" && (!strings.Contains(r.stdout, "\n  --server HOST:PORT\n") || strings.Contains(r.stdout, "\n  -server")) {
			t.Errorf("help call does not write flags as --flag: %s", r.stdout)
		}
	}
	r := runCmd(ctx, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "complete -o default -F _netsvc netsvc") {
		t.Fatal(r)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to load the script in")
	}
	script := r.stdout + `
COMP_WORDS=(netsvc call --ser); COMP_CWORD=2; _netsvc; echo "${COMPREPLY[@]}"
COMP_WORDS=(netsvc wa); COMP_CWORD=1; _netsvc; echo "${COMPREPLY[@]}"
`
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil || string(out) != "--server\nwatch\n" {
		t.Fatalf("bash completion: %q, %v", out, err)
	}
	if r := runCmd(ctx, "completion", "fish"); r.code != 2 {
		t.Fatal(r)
	}
}

// TestPingAndMembers: both over the client's exchange link, no console.
func TestPingAndMembers(t *testing.T) {
	n := startServer(t, "a", "", true)
	ctx := context.Background()
	r := runCmd(ctx, "ping", "--server", n.Addr(), "--count", "2")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "node "+n.Addr()+": 2 round trips, min/avg/max ") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "ping", "--server", n.Addr(), "math")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "service math: 3 round trips") {
		t.Fatal(r)
	}
	if r = runCmd(ctx, "ping", "--server", n.Addr(), "nobody"); r.code != 1 || !strings.Contains(r.stderr, "no such service") {
		t.Fatal(r)
	}
	// A node without a cluster says so; one with gossip lists itself.
	if r = runCmd(ctx, "members", "--server", n.Addr()); r.code != 1 || !strings.Contains(r.stderr, "has no cluster") {
		t.Fatal(r)
	}
	g := nodetest.Server(t, "g1")
	r = runCmd(ctx, "members", "--server", g.Addr())
	if r.code != 0 || !strings.HasPrefix(r.stdout, "NODE") || !strings.Contains(r.stdout, "\ng1 ") || !strings.Contains(r.stdout, " alive ") {
		t.Fatal(r)
	}
	r = runCmd(ctx, "members", "--server", g.Addr(), "--json")
	if r.code != 0 || !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, `"node":"g1"`) {
		t.Fatal(r)
	}
}
