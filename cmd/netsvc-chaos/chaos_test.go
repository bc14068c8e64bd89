package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/service"
)

// TestChaos runs netsvc-chaos for a minute: five nodes killed and
// restarted under load. Every call must end in an answer or a failure
// within its deadline, and the cluster must settle with every service
// once everywhere and one link per pair. The kill schedule is random;
// the seed is logged, and NETSVC_CHAOS_SEED replays one.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a five-node cluster for a minute")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NETSVC_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NETSVC_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (NETSVC_CHAOS_SEED=%d replays this schedule)", seed, seed)
	netsvc, chaos := buildBinaries(t)
	p := startProc(t, chaos, "--bin", netsvc, "--duration", "60s", "--seed", strconv.FormatUint(seed, 10), "--json")
	r := p.wait(t, 3*time.Minute)
	t.Logf("progress:\n%s", r.stderr)
	var sum chaosSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("exit %d, summary not JSON: %v\n%s", r.code, err, r.stdout)
	}
	var human strings.Builder
	sum.print(&human)
	t.Logf("summary:\n%s", human.String())
	if r.code != 0 {
		t.Fatalf("netsvc-chaos exited with %d: %v", r.code, sum.Problems)
	}
	if sum.Seed != seed || sum.Kills < 10 || sum.Restarts != sum.Kills || sum.Sent == 0 || sum.Answered < sum.Sent/2 ||
		sum.Hung != 0 || sum.Lost != 0 || sum.Wrong != 0 || sum.Settled == "" || len(sum.Problems) != 0 {
		t.Errorf("not a sane summary: %+v", sum)
	}
	var failed uint64
	for _, n := range sum.Failed {
		failed += n
	}
	if sum.Answered+failed != sum.Sent {
		t.Errorf("%d answered + %d failed != %d sent", sum.Answered, failed, sum.Sent)
	}
}

// TestChaosUsage checks the command line: --help, and usage errors as
// one line and a hint, exit 2, before any node starts: bad flags, and a
// netsvc binary that is missing or is not one.
func TestChaosUsage(t *testing.T) {
	ctx := context.Background()
	r := runCmd(ctx, "--help")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: netsvc-chaos ") || !strings.Contains(r.stdout, "-bin PATH") || r.stderr != "" {
		t.Errorf("--help: %v", r)
	}

	goCmd, _ := exec.LookPath("go") // a binary that is not netsvc
	t.Setenv("PATH", t.TempDir())   // and no netsvc on PATH
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "2"}, "--nodes must be 3 or more"},
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"--rate", "0"}, "--rate must be in"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--duration", "1s"}, "no netsvc binary on PATH to run the nodes with: build one with 'go build -o netsvc ./cmd/netsvc'"},
		{[]string{"--bin", filepath.Join(t.TempDir(), "netsvc")}, "no such file"},
		{[]string{"--bin", goCmd}, " is not a netsvc binary"},
	} {
		if c.args[len(c.args)-1] == "" {
			continue // no go command
		}
		r := runCmd(ctx, c.args...)
		if l := strings.Split(r.stderr, "\n"); r.code != 2 || len(l) != 3 || !strings.HasPrefix(l[0], "netsvc-chaos: ") ||
			!strings.Contains(l[0], c.want) || l[1] != "run 'netsvc-chaos --help' for usage" || r.stdout != "" {
			t.Errorf("%v: want exit 2 and %q, then the hint: %v", c.args, c.want, r)
		}
	}
}

// TestChaosChecks checks the checks of a settled cluster on made-up
// states: a stale binding, a missing or doubled service, a duplicate,
// missing or leftover link are each reported.
func TestChaosChecks(t *testing.T) {
	n1, n2, n3, dead := service.ProcessID(1), service.ProcessID(2), service.ProcessID(3), service.ProcessID(9)
	live := map[service.ProcessID]string{n1: "n1", n2: "n2", n3: "n3"}
	bind := func(name string, p service.ProcessID) service.Binding {
		return service.Binding{Name: name, Address: service.Address{Process: p, ID: 1}, Node: live[p]}
	}
	var good []service.Binding
	for _, p := range []service.ProcessID{n1, n2, n3} {
		good = append(good, bind(demoMath, p), bind(demoSeed, p))
	}
	if err := checkBindings("x", good, live); err != nil {
		t.Errorf("good bindings: %v", err)
	}
	for name, bs := range map[string][]service.Binding{
		"stale":   append(append([]service.Binding{}, good...), bind(demoMath, dead)),
		"missing": good[1:],
		"twice":   append(append([]service.Binding{}, good...), bind(demoSeed, n2)),
	} {
		if err := checkBindings("x", bs, live); err == nil {
			t.Errorf("%s bindings passed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}

	me := &chaosNode{name: "n1", process: n1}
	link := func(node string, p service.ProcessID, state string) exchange.LinkStatus {
		return exchange.LinkStatus{ID: "link-" + node, RemoteNode: node, RemoteProcess: p, State: state}
	}
	ok := []exchange.LinkStatus{link("n2", n2, "active"), link("n3", n3, "active"), link("c1", 77, "active")}
	if err := checkLinks(me, ok, live, []string{"c1"}); err != nil {
		t.Errorf("good links: %v", err)
	}
	// A node a drained server's clients moved to links to them too.
	moved := append(append([]exchange.LinkStatus{}, ok...), link("c2", 78, "active"))
	if err := checkLinks(me, moved, live, []string{"c1", "c2"}); err != nil {
		t.Errorf("good links with a moved client: %v", err)
	}
	for name, ls := range map[string][]exchange.LinkStatus{
		"duplicate":   append(append([]exchange.LinkStatus{}, ok...), link("n2", n2, "active")),
		"missing":     ok[1:],
		"handshaking": append(append([]exchange.LinkStatus{}, ok...), link("", 0, "handshaking")),
		"to the dead": append(append([]exchange.LinkStatus{}, ok...), link("n4", dead, "active")),
		"no client":   ok[:2],
		"a stranger":  moved,
	} {
		if err := checkLinks(me, ls, live, []string{"c1"}); err == nil {
			t.Errorf("%s links passed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
