package examples_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait for a process's output or exit. It is
// generous: the examples run under the race detector on small machines,
// several scenarios at once. A passing run waits far less.
const waitTimeout = 45 * time.Second

// TestExamples builds every example once and runs the scenarios of
// examples/README.md, each example a separate OS process on loopback
// ports the examples pick themselves (port 0, read back from their logs).
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples and runs them as processes; skipped with -short")
	}
	bin := buildExamples(t)
	t.Run("MathRequestReply", func(t *testing.T) { t.Parallel(); testMath(t, bin) })
	t.Run("PublishSubscribe", func(t *testing.T) { t.Parallel(); testPublishSubscribe(t, bin) })
	t.Run("Bridge", func(t *testing.T) { t.Parallel(); testBridge(t, bin) })
	t.Run("GossipMesh", func(t *testing.T) { t.Parallel(); testGossipMesh(t, bin) })
	t.Run("StaticMesh", func(t *testing.T) { t.Parallel(); testStaticMesh(t, bin) })
}

var (
	listenRE = regexp.MustCompile(`msg="exchange server listening".* listen=(\S+)`)
	gossipRE = regexp.MustCompile(`msg="gossip started" gossip=(\S+)`)
)

// testMath: exchange + math-server + math-client. The client may come up
// before math is announced; it waits with a registry watch.
func testMath(t *testing.T, bin string) {
	x := start(t, bin, "exchange", "--listen", "127.0.0.1:0")
	addr := x.match(t, x.stderr, listenRE)[1]
	server := start(t, bin, "math-server", "--server", addr)
	client := start(t, bin, "math-client", "--server", addr, "--timeout", waitTimeout.String())
	client.exitsWith(t, 0)
	out := client.stdout.String()
	for _, want := range []string{"6 * 7 = 42\n", "6 + 7 = 13\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("math-client printed %q, want a line %q", out, want)
		}
	}
	server.interrupt(t)
	x.interrupt(t)
}

// testPublishSubscribe: exchange + publisher + subscribers. One
// subscriber starts before the publisher and sees it appear and go; a
// late one with --count 3 gets the kept init first, then next reports in
// order. The publisher logs the late subscriber coming and going.
func testPublishSubscribe(t *testing.T, bin string) {
	linked := regexp.MustCompile(`linked to the exchange server`)
	x := start(t, bin, "exchange", "--listen", "127.0.0.1:0")
	addr := x.match(t, x.stderr, listenRE)[1]
	early := start(t, bin, "subscriber", "--server", addr)
	early.match(t, early.stderr, linked)
	pub := start(t, bin, "publisher", "--server", addr, "--interval", "100ms")
	pub.match(t, pub.stderr, linked)
	early.match(t, early.stdout, regexp.MustCompile(`(?m)^publisher seed appeared `))
	early.match(t, early.stdout, regexp.MustCompile(`\A(?:publisher .*\n)*seed init \{`)) // the first report is init

	late := start(t, bin, "subscriber", "--server", addr, "--count", "3")
	late.exitsWith(t, 0)
	checkSeedReports(t, late.stdout.String(), "seed", 3)
	pub.match(t, pub.stderr, regexp.MustCompile(`msg="subscriber came" .*pattern=\*`))
	pub.match(t, pub.stderr, regexp.MustCompile(`msg="subscriber went" .*pattern=\*`))

	pub.interrupt(t)
	early.match(t, early.stdout, regexp.MustCompile(`(?m)^publisher seed withdrawn `))
	early.interrupt(t)
	x.interrupt(t)
}

// testBridge: a front server (group "") and a backend server (group
// "backend"); backend-seed publishes BACKEND:SEED (audience "backend");
// the bridge, a client of both, republishes as SEED. A front subscriber of
// SEED gets the reports; one of BACKEND:SEED never sees that service.
func testBridge(t *testing.T, bin string) {
	front := start(t, bin, "exchange", "--listen", "127.0.0.1:0", "--name", "front")
	frontAddr := front.match(t, front.stderr, listenRE)[1]
	back := start(t, bin, "exchange", "--listen", "127.0.0.1:0", "--name", "back", "--group", "backend")
	backAddr := back.match(t, back.stderr, listenRE)[1]
	seed := start(t, bin, "backend-seed", "--server", backAddr, "--interval", "100ms")
	bridge := start(t, bin, "bridge", "--front", frontAddr, "--backend", backAddr)
	hidden := start(t, bin, "subscriber", "--server", frontAddr, "--service", "BACKEND:SEED")
	hidden.match(t, hidden.stderr, regexp.MustCompile(`linked to the exchange server`))

	sub := start(t, bin, "subscriber", "--server", frontAddr, "--service", "SEED", "--count", "3")
	sub.exitsWith(t, 0)
	checkSeedReports(t, sub.stdout.String(), "SEED", 3)
	bridge.match(t, bridge.stderr, regexp.MustCompile(`msg="backend publisher" service=BACKEND:SEED available=true`))
	// By now the bridge has known BACKEND:SEED for at least two of its
	// reports, and the front subscriber of that name was linked all along.
	if out := hidden.stdout.String(); out != "" {
		t.Errorf("a front subscriber of BACKEND:SEED (audience \"backend\") got:\n%s", out)
	}
	for _, p := range []*proc{hidden, bridge, seed, back, front} {
		p.interrupt(t)
	}
}

// testGossipMesh: three exchange-network servers joining the first by
// gossip form a full mesh; math-server on the second is called by
// math-client on the third.
func testGossipMesh(t *testing.T, bin string) {
	var nodes []*proc
	var addrs []string
	var seed string
	for i := 1; i <= 3; i++ {
		args := []string{"--name", fmt.Sprintf("n%d", i), "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
		if i > 1 {
			args = append(args, "--join", seed)
		}
		n := start(t, bin, "exchange-network", args...)
		addrs = append(addrs, n.match(t, n.stderr, listenRE)[1])
		if i == 1 {
			seed = n.match(t, n.stderr, gossipRE)[1]
		}
		nodes = append(nodes, n)
	}
	waitMeshed(t, nodes)
	meshCall(t, bin, nodes, addrs[1], addrs[2])
}

// testStaticMesh: the same with --gossip off and static --connect lists
// (each pair linked once: n2 dials n1, n3 dials n1 and n2).
func testStaticMesh(t *testing.T, bin string) {
	var nodes []*proc
	var addrs []string
	for i := 1; i <= 3; i++ {
		args := []string{"--name", fmt.Sprintf("n%d", i), "--listen", "127.0.0.1:0", "--gossip", "off", "--retry", "200ms"}
		if i > 1 {
			args = append(args, "--connect", strings.Join(addrs, ","))
		}
		n := start(t, bin, "exchange-network", args...)
		addrs = append(addrs, n.match(t, n.stderr, listenRE)[1])
		nodes = append(nodes, n)
	}
	waitMeshed(t, nodes)
	meshCall(t, bin, nodes, addrs[1], addrs[2])
}

// waitMeshed waits until each node has logged a link to each other one.
func waitMeshed(t *testing.T, nodes []*proc) {
	t.Helper()
	linkRE := regexp.MustCompile(`msg="link up" peer=(n\d) role=server`)
	for _, n := range nodes {
		n.waitUntil(t, n.stderr, "links to the two other servers", func(s string) bool {
			peers := map[string]bool{}
			for _, m := range linkRE.FindAllStringSubmatch(s, -1) {
				peers[m[1]] = true
			}
			return len(peers) == len(nodes)-1
		})
	}
}

// meshCall runs math-server on one server and math-client on another,
// then stops everything with SIGINT.
func meshCall(t *testing.T, bin string, nodes []*proc, serverAddr, clientAddr string) {
	t.Helper()
	server := start(t, bin, "math-server", "--server", serverAddr)
	client := start(t, bin, "math-client", "--server", clientAddr, "--timeout", waitTimeout.String())
	client.exitsWith(t, 0)
	if out := client.stdout.String(); !strings.Contains(out, "6 * 7 = 42\n") {
		t.Errorf("math-client printed %q, want 6 * 7 = 42", out)
	}
	server.interrupt(t)
	for _, n := range nodes {
		n.interrupt(t)
	}
}

// checkSeedReports checks a subscriber's output: the publisher appeared,
// then n reports of name, "init" first and then "next" with rising counts.
func checkSeedReports(t *testing.T, out, name string, n int) {
	t.Helper()
	var reports []string
	appeared := false
	for line := range strings.Lines(out) {
		switch {
		case strings.HasPrefix(line, "publisher "+name+" appeared"):
			appeared = true
		case strings.HasPrefix(line, name+" "):
			reports = append(reports, strings.TrimSuffix(line, "\n"))
		}
	}
	if !appeared {
		t.Errorf("subscriber did not print the publisher %s appearing:\n%s", name, out)
	}
	if len(reports) != n {
		t.Fatalf("subscriber printed %d reports, want %d:\n%s", len(reports), n, out)
	}
	if !strings.HasPrefix(reports[0], name+` init {"time":`) {
		t.Errorf("first report is %q, want init", reports[0])
	}
	nextRE := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + ` next \{"count":(\d+),`)
	last := 0
	for _, r := range reports[1:] {
		m := nextRE.FindStringSubmatch(r)
		if m == nil {
			t.Errorf("report %q: want next {count, ...}", r)
			continue
		}
		var c int
		fmt.Sscan(m[1], &c)
		if c <= last {
			t.Errorf("next count %d after %d: out of order", c, last)
		}
		last = c
	}
}

// buildExamples builds every example into a temporary folder, with the
// race detector when this test has it.
func buildExamples(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if goTool, err = exec.LookPath(filepath.Join(os.Getenv("GOROOT"), "bin", "go")); err != nil {
			t.Skip("no go command to build the examples with")
		}
	}
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled() {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, append(args, "./...")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s ./...: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// proc is an example running as a process, its output kept.
type proc struct {
	label          string
	cmd            *exec.Cmd
	stdout, stderr *output
	exited         chan struct{} // closed once Wait returned and all output is in
	waitErr        error
}

// start starts an example; t.Cleanup kills it if it still runs, and
// shows its output when the test failed.
func start(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{
		label:  name + " " + strings.Join(args, " "),
		cmd:    exec.Command(filepath.Join(bin, name), args...),
		stdout: newOutput(), stderr: newOutput(),
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// A race-enabled program sleeps 1 s at exit by default; 100 ms is
	// enough for a report to be written, and keeps the test quick.
	p.cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=100"))
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.label, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("%s: the race detector found a race", p.label)
		}
		if t.Failed() {
			t.Logf("%s (%v)\n--- stdout:\n%s--- stderr:\n%s", p.label, p.waitErr, p.stdout, p.stderr)
		}
	})
	return p
}

// match waits until the output matches re, and returns the submatches.
func (p *proc) match(t *testing.T, o *output, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	p.waitUntil(t, o, re.String(), func(s string) bool {
		m = re.FindStringSubmatch(s)
		return m != nil
	})
	return m
}

// waitUntil waits until ok(output) holds, failing the test when the
// process exits first or waitTimeout passes.
func (p *proc) waitUntil(t *testing.T, o *output, what string, ok func(string) bool) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		s, changed := o.state()
		if ok(s) {
			return
		}
		select {
		case <-changed:
		case <-p.exited:
			if s, _ := o.state(); ok(s) {
				return
			}
			t.Fatalf("%s exited (%v) before: %s", p.label, p.waitErr, what)
		case <-timer.C:
			t.Fatalf("%s: not within %v: %s", p.label, waitTimeout, what)
		}
	}
}

// exitsWith waits for the process to exit by itself with code.
func (p *proc) exitsWith(t *testing.T, code int) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not exit within %v", p.label, waitTimeout)
	}
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		t.Fatalf("%s exited with %d (%v), want %d", p.label, got, p.waitErr, code)
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and expects a clean exit (0).
func (p *proc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Errorf("interrupt %s: %v", p.label, err)
		return
	}
	p.exitsWith(t, 0)
}

// output collects what a process writes and tells waiters of each write.
type output struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed at the next write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, b...)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(b), nil
}

// state returns the output so far and a channel closed at the next write.
func (o *output) state() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf), o.changed
}

func (o *output) String() string {
	s, _ := o.state()
	return s
}
