package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// The cluster of a chaos run: starting, killing and restarting its
// nodes, and checking it once it has settled.

// setUp starts the nodes (a chain of joins) and the clients, and waits
// until everyone sees everyone's math service.
func (r *chaosRun) setUp(ctx context.Context) error {
	ports, err := nodetest.FreePorts(3 * r.cfg.nodes)
	if err != nil {
		return err
	}
	for i := range r.cfg.nodes {
		n := &chaosNode{i: i, name: fmt.Sprintf("n%d", i+1),
			listen:  fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			gossip:  fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			console: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2])}
		if n.log, err = os.Create(filepath.Join(r.logDir, n.name+".log")); err != nil {
			return err
		}
		r.nodes = append(r.nodes, n)
	}
	for i, n := range r.nodes {
		var join []string
		if i > 0 {
			join = []string{r.nodes[i-1].gossip}
		}
		if err := r.start(ctx, n, join); err != nil {
			return err
		}
	}
	if r.clientLog, err = os.Create(filepath.Join(r.logDir, "clients.log")); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(r.clientLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i, n := range r.nodes {
		servers := []string{n.listen}
		if r.cfg.rolling {
			// The other servers are fallbacks: a draining server moves
			// its clients to them.
			for j := range r.nodes {
				if j != i {
					servers = append(servers, r.nodes[(i+j)%len(r.nodes)].listen)
				}
			}
		}
		xc := node.Client("", servers...)
		xc.Retry = 200 * time.Millisecond
		c, err := node.Start(ctx, node.Config{Name: "chaos-client-" + n.name, Exchanges: []exchange.Config{xc}, Logger: log})
		if err != nil {
			return err
		}
		r.clients = append(r.clients, c)
	}
	if err := r.waitSettled(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("the cluster did not form: %w", err)
	}
	r.logf("cluster formed: %d nodes, %d clients", len(r.nodes), len(r.clients))
	return nil
}

// start starts n's process and waits until its console answers. A
// process that exits at once (its port taken a moment) is retried.
func (r *chaosRun) start(ctx context.Context, n *chaosNode, join []string) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
		if err = r.startOnce(ctx, n, join); err == nil {
			return nil
		}
		r.logf("%s did not start: %v", n.name, err)
	}
	return fmt.Errorf("cannot start %s: %w", n.name, err)
}

func (r *chaosRun) startOnce(ctx context.Context, n *chaosNode, join []string) error {
	args := []string{"node", "--name", n.name, "--listen", n.listen, "--gossip", n.gossip, "--gossip-preset", "fast",
		"--console", n.console, "--demo", "--demo-interval", "500ms", "--retry", "200ms"}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	cmd := exec.Command(r.cfg.bin, args...)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	dieWithParent(cmd)
	fmt.Fprintf(n.log, "=== chaos: start %d at %.3fs: %s\n", n.starts+1, time.Since(r.begin).Seconds(), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.killed = cmd, done, false
	n.starts++
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		unexpected := !n.killed && n.cmd == cmd
		n.mu.Unlock()
		close(done)
		if unexpected {
			r.problem("%s (process %d) exited by itself: %v", n.name, cmd.Process.Pid, err)
		}
	}()
	p, err := r.waitConsole(ctx, n, done)
	if err != nil {
		n.mu.Lock()
		n.killed = true // not a crash: the start failed
		n.mu.Unlock()
		cmd.Process.Kill()
		<-done
		return err
	}
	n.mu.Lock()
	n.process = p
	n.mu.Unlock()
	return nil
}

// waitConsole waits until n's console answers with its process id.
func (r *chaosRun) waitConsole(ctx context.Context, n *chaosNode, done <-chan struct{}) (service.ProcessID, error) {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		var info struct {
			Process service.ProcessID `json:"process"`
		}
		if err := r.get(n, "/api/node", &info); err == nil && info.Process != 0 {
			return info.Process, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-done:
			return 0, fmt.Errorf("exited at start (see %s)", n.log.Name())
		case <-deadline.C:
			return 0, errors.New("its console did not answer within 10s")
		case <-tick.C:
		}
	}
}

// kill SIGKILLs n's process and waits for it to be gone.
func (r *chaosRun) kill(n *chaosNode) {
	n.mu.Lock()
	n.killed = true
	cmd, done, p := n.cmd, n.done, n.process
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	now := time.Now()
	cmd.Process.Kill()
	<-done
	fmt.Fprintf(n.log, "=== chaos: killed at %.3fs\n", now.Sub(r.begin).Seconds())
	r.mu.Lock()
	r.kills = append(r.kills, killEvent{node: n.i, at: now, process: p})
	r.mu.Unlock()
}

// killer SIGKILLs a random node (one time in four, two) every
// --kill-every until the end, and restarts it after a random pause of
// up to --max-down, joining every other node.
func (r *chaosRun) killer(ctx context.Context, end time.Time) error {
	tick := time.NewTicker(r.cfg.killEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if time.Now().After(end) {
			return nil
		}
		victims := []int{r.rng.IntN(len(r.nodes))}
		if r.rng.IntN(4) == 0 {
			other := r.rng.IntN(len(r.nodes) - 1)
			if other >= victims[0] {
				other++
			}
			victims = append(victims, other)
		}
		down := time.Duration(r.rng.Int64N(int64(r.cfg.maxDown) + 1)).Round(time.Millisecond)
		var names []string
		for _, v := range victims {
			r.kill(r.nodes[v])
			names = append(names, r.nodes[v].name)
		}
		r.logf("killed %s; restarting after %v", strings.Join(names, " and "), down)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(down):
		}
		for _, v := range victims {
			n := r.nodes[v]
			if err := r.restart(ctx, n); err != nil {
				return err
			}
			r.logf("restarted %s as process %s", n.name, n.proc())
		}
	}
}

// restart starts node n again, joining the others' gossip, and counts it.
func (r *chaosRun) restart(ctx context.Context, n *chaosNode) error {
	var join []string
	for _, o := range r.nodes {
		if o != n {
			join = append(join, o.gossip)
		}
	}
	if err := r.start(ctx, n, join); err != nil {
		return err
	}
	r.mu.Lock()
	r.restarts++
	r.mu.Unlock()
	return nil
}

// roller drains each node in turn with SIGTERM, as a rolling restart
// does, restarts it, and waits until every client sees its math again
// before the next, until the end.
func (r *chaosRun) roller(ctx context.Context, end time.Time) error {
	for k := 0; time.Now().Before(end); k++ {
		n := r.nodes[k%len(r.nodes)]
		n.mu.Lock()
		n.killed = true // its exit is expected
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		began := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return fmt.Errorf("drain %s: %w", n.name, err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("%s did not drain within 30s", n.name)
		case <-ctx.Done():
			return nil
		}
		fmt.Fprintf(n.log, "=== chaos: drained at %.3fs\n", time.Since(r.begin).Seconds())
		r.mu.Lock()
		r.drains++
		r.mu.Unlock()
		if err := r.restart(ctx, n); err != nil {
			return err
		}
		if err := r.waitMath(ctx, n.name, 30*time.Second); err != nil {
			return err
		}
		r.logf("drained %s in %v and restarted it as process %s", n.name, time.Since(began).Round(time.Millisecond), n.proc())
	}
	return nil
}

// waitMath waits until every client sees the math service of node name.
func (r *chaosRun) waitMath(ctx context.Context, name string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		missing := ""
		for _, c := range r.clients {
			if _, ok := mathOf(c, name); !ok {
				missing = c.Runtime().Node()
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not see %s's math %v after its restart", missing, name, d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *chaosNode) proc() service.ProcessID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.process
}

// stopAll stops the clients and the nodes.
func (r *chaosRun) stopAll() {
	for _, c := range r.clients {
		stopNode(c)
	}
	if r.clientLog != nil {
		r.clientLog.Close()
	}
	for _, n := range r.nodes {
		n.mu.Lock()
		n.killed = true
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		if cmd != nil {
			cmd.Process.Signal(os.Interrupt)
		}
		if done != nil {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		if n.log != nil {
			n.log.Close()
		}
	}
}

// stopNode stops a node, bounded in time.
func stopNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Stop(ctx)
}

// get reads a JSON answer of n's console.
func (r *chaosRun) get(n *chaosNode, path string, v any) error {
	resp, err := r.http.Get("http://" + n.console + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s", n.console, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitSettled polls until the cluster is as it should be at rest, or d
// passes; the error says what is still wrong.
func (r *chaosRun) waitSettled(ctx context.Context, d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := r.settled()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return err
		case <-tick.C:
		}
	}
}

// settled checks the cluster at rest: every node is its latest process;
// every node and client sees the math and seed services of exactly the
// live nodes, once each, and nothing of a dead process (no stale
// binding); every pair of nodes has exactly one link, active, and each
// client one to its node (no duplicate, no leftover).
func (r *chaosRun) settled() error {
	live := map[service.ProcessID]string{}
	for _, n := range r.nodes {
		live[n.proc()] = n.name
	}
	// Where each client is linked: its own node, or with --rolling any
	// one (a drained server moved its clients to another).
	clientsOf := map[string][]string{}
	var errs []string
	for i, c := range r.clients {
		var active []string
		for _, l := range c.Links() {
			if l.State == "active" {
				active = append(active, l.RemoteNode)
			}
		}
		switch {
		case len(active) != 1 || (!r.cfg.rolling && active[0] != r.nodes[i].name):
			want := r.nodes[i].name
			if r.cfg.rolling {
				want = "one node"
			}
			errs = append(errs, fmt.Sprintf("%s has active links to %v, want [%s]", c.Runtime().Node(), active, want))
		default:
			clientsOf[active[0]] = append(clientsOf[active[0]], c.Runtime().Node())
		}
	}
	for _, n := range r.nodes {
		var info struct {
			Process service.ProcessID `json:"process"`
		}
		if err := r.get(n, "/api/node", &info); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if info.Process != n.proc() {
			errs = append(errs, fmt.Sprintf("%s's console is of process %s, want %s", n.name, info.Process, n.proc()))
		}
		var svcs []struct {
			Name    string            `json:"name"`
			Process service.ProcessID `json:"process"`
			Node    string            `json:"node"`
		}
		if err := r.get(n, "/api/services", &svcs); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var bs []service.Binding
		for _, s := range svcs {
			bs = append(bs, service.Binding{Name: s.Name, Address: service.Address{Process: s.Process}, Node: s.Node})
		}
		if err := checkBindings(n.name, bs, live); err != nil {
			errs = append(errs, err.Error())
		}
		var conns console.Connections
		if err := r.get(n, "/api/connections", &conns); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := checkLinks(n, conns.Links, live, clientsOf[n.name]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, c := range r.clients {
		if err := checkBindings(c.Runtime().Node(), c.Runtime().Services(), live); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// checkBindings checks what who sees: math and seed once for each live
// node, and no service of any other process.
func checkBindings(who string, bs []service.Binding, live map[service.ProcessID]string) error {
	var errs []string
	count := map[string]map[service.ProcessID]int{demoMath: {}, demoSeed: {}}
	for _, b := range bs {
		p := b.Address.Process
		if _, ok := live[p]; !ok {
			errs = append(errs, fmt.Sprintf("stale binding %s of %s (process %s)", b.Name, b.Node, p))
			continue
		}
		if m := count[b.Name]; m != nil {
			m[p]++
		}
	}
	for _, name := range []string{demoMath, demoSeed} {
		for p, node := range live {
			if k := count[name][p]; k != 1 {
				errs = append(errs, fmt.Sprintf("%d bindings of %s of %s", k, name, node))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s sees %s", who, strings.Join(errs, ", "))
	}
	return nil
}

// checkLinks checks n's links: one active link to each other live node,
// one to each client linked to it, and nothing else.
func checkLinks(n *chaosNode, links []exchange.LinkStatus, live map[service.ProcessID]string, clients []string) error {
	var errs []string
	perPeer := map[string]int{}
	for _, l := range links {
		switch {
		case l.State != "active":
			errs = append(errs, fmt.Sprintf("a %s link %s (%s)", l.State, l.ID, l.RemoteAddress))
		case slices.Contains(clients, l.RemoteNode):
			perPeer[l.RemoteNode]++
		case live[l.RemoteProcess] == "":
			errs = append(errs, fmt.Sprintf("a link to %s of dead process %s", l.RemoteNode, l.RemoteProcess))
		default:
			perPeer[live[l.RemoteProcess]]++
		}
	}
	want := slices.Clone(clients)
	for p, name := range live {
		if p != n.proc() {
			want = append(want, name)
		}
	}
	for _, w := range want {
		if perPeer[w] != 1 {
			errs = append(errs, fmt.Sprintf("%d links to %s", perPeer[w], w))
		}
		delete(perPeer, w)
	}
	for peer, k := range perPeer {
		errs = append(errs, fmt.Sprintf("%d unexpected links to %s", k, peer))
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s has %s", n.name, strings.Join(errs, ", "))
	}
	return nil
}

// finalRound calls every node's math from every client once: all must
// answer.
func (r *chaosRun) finalRound() error {
	var errs []string
	for i, c := range r.clients {
		for _, n := range r.nodes {
			a, ok := mathOf(c, n.name)
			if !ok {
				errs = append(errs, fmt.Sprintf("client %d sees no math of %s", i+1, n.name))
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.deadline)
			v, err := service.CallFor[int64](ctx, c.Runtime(), a, "multiply", 6, 7)
			cancel()
			if err != nil || v != 42 {
				errs = append(errs, fmt.Sprintf("client %d: %s's math.multiply(6, 7) = %d, %v", i+1, n.name, v, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// checkLogs looks for crashes in the nodes' logs, and counts their
// error lines by message (memberlist's own excepted: killing members
// makes it complain, as it should).
func (r *chaosRun) checkLogs() map[string]int {
	errs := map[string]int{}
	for _, n := range r.nodes {
		b, err := os.ReadFile(n.log.Name())
		if err != nil {
			continue
		}
		for _, bad := range []string{"panic:", "fatal error:", "DATA RACE"} {
			if strings.Contains(string(b), bad) {
				r.problem("%s's log has %q (%s)", n.name, bad, n.log.Name())
			}
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "level=ERROR") || strings.Contains(l, "component=memberlist") {
				continue
			}
			msg := l
			if _, m, ok := strings.Cut(l, " msg="); ok {
				msg = m
				if m[0] == '"' {
					if q, err := strconv.QuotedPrefix(m); err == nil {
						msg, _ = strconv.Unquote(q)
					}
				} else {
					msg, _, _ = strings.Cut(m, " ")
				}
			}
			errs[msg]++
		}
	}
	return errs
}
