//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

// TestE2ECluster runs nodes as separate processes that find each other
// by gossip (fast preset, a chain of --join seeds): the mesh forms with
// every service visible everywhere; a node killed with SIGKILL has its
// services withdrawn everywhere, and comes back when restarted; a node
// stopped with SIGINT leaves, and its services go at once.
func TestE2ECluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	type nodeProc struct {
		name                    string
		listen, gossip, console string
		p                       *proc
	}
	start := func(name, join string, demo bool) *nodeProc {
		n := &nodeProc{name: name, listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			console: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		args := []string{"--gossip", n.gossip, "--gossip-preset", "fast", "--retry", "200ms"}
		if join != "" {
			args = append(args, "--join", join)
		}
		if demo {
			args = append(args, "--demo")
		}
		p := startProc(t, bin, append([]string{"node", "--name", name, "--listen", n.listen, "--console", n.console}, args...)...)
		n.p = p
		nodetest.WaitFor(t, 10*time.Second, func() error {
			select {
			case <-p.done:
				t.Fatalf("node %s exited with %d:\n%s", name, p.code, p.stderr.String())
			default:
			}
			if !strings.Contains(p.stderr.String(), "gossip on "+n.gossip) {
				return fmt.Errorf("node %s is not gossiping yet", name)
			}
			return nil
		})
		return n
	}
	// mathOn lists the processes whose math service a node sees.
	mathOn := func(n *nodeProc) (map[string]bool, error) {
		r := runProc(t, bin, "services", "--server", n.listen, "--json", "--timeout", "5s")
		if r.code != 0 {
			return nil, fmt.Errorf("services: %v", r)
		}
		var list []struct{ Name, Process string }
		if err := json.Unmarshal(bytes.TrimSpace([]byte(r.stdout)), &list); err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, b := range list {
			if b.Name == "math" {
				out[b.Process] = true
			}
		}
		return out, nil
	}
	processOf := func(n *nodeProc) string {
		var pid string
		nodetest.WaitFor(t, 5*time.Second, func() error {
			i := strings.Index(n.p.stderr.String(), " process=")
			if i < 0 {
				return fmt.Errorf("no process id logged by %s yet", n.name)
			}
			pid = strings.Fields(n.p.stderr.String()[i+len(" process="):])[0]
			return nil
		})
		return pid
	}
	expect := func(what string, within time.Duration, nodes []*nodeProc, want ...string) time.Duration {
		t.Helper()
		begin := time.Now()
		nodetest.WaitFor(t, within, func() error {
			for _, n := range nodes {
				got, err := mathOn(n)
				if err != nil {
					return err
				}
				if len(got) != len(want) {
					return fmt.Errorf("%s: %s sees math of %v, want %v", what, n.name, got, want)
				}
				for _, w := range want {
					if !got[w] {
						return fmt.Errorf("%s: %s sees math of %v, want %v", what, n.name, got, want)
					}
				}
			}
			return nil
		})
		took := time.Since(begin)
		t.Logf("%s: %v", what, took.Round(time.Millisecond))
		return took
	}

	n1 := start("n1", "", true)
	n2 := start("n2", n1.gossip, false)
	n3 := start("n3", n2.gossip, true)
	n4 := start("n4", n3.gossip, false)
	all := []*nodeProc{n1, n2, n3, n4}
	p1, p3 := processOf(n1), processOf(n3)
	// Each probe starts a client process, so allow for their start-up.
	expect("mesh formed, math of n1 and n3 visible on every node", 5*time.Second, all, p1, p3)

	// SIGKILL n1: the others withdraw its services (TCP notices at once;
	// gossip would within about a second anyway).
	n1.p.cmd.Process.Signal(syscall.SIGKILL)
	<-n1.p.done
	expect("killed node's math withdrawn everywhere", 5*time.Second, []*nodeProc{n2, n3, n4}, p3)

	// Restart it: a new process of the same name rejoins through n4.
	n1 = start("n1", n4.gossip, true)
	p1 = processOf(n1)
	expect("restarted node's math visible everywhere", 5*time.Second, []*nodeProc{n1, n2, n3, n4}, p1, p3)

	// A partition: n2 freezes (SIGSTOP, hence the unix build tag) long enough to be declared dead;
	// the others close their links to it. Thawed, it rejoins and the
	// mesh comes back with one link per pair, no duplicates.
	n2.p.cmd.Process.Signal(syscall.SIGSTOP)
	links := func(n *nodeProc) (map[string]int, error) {
		resp, err := http.Get("http://" + n.console + "/api/connections")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var c struct {
			Links []struct {
				RemoteNode string `json:"remote_node"`
				State      string
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			return nil, err
		}
		out := map[string]int{}
		for _, l := range c.Links {
			if l.State == "active" {
				out[l.RemoteNode]++
			}
		}
		return out, nil
	}
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, n := range []*nodeProc{n1, n3, n4} {
			l, err := links(n)
			if err != nil {
				return err
			}
			if l["n2"] != 0 {
				return fmt.Errorf("%s still has a link to the frozen n2", n.name)
			}
		}
		return nil
	})
	n2.p.cmd.Process.Signal(syscall.SIGCONT)
	nodetest.WaitFor(t, 10*time.Second, func() error {
		for _, n := range []*nodeProc{n1, n2, n3, n4} {
			l, err := links(n)
			if err != nil {
				return err
			}
			for _, m := range []*nodeProc{n1, n2, n3, n4} {
				if m != n && l[m.name] != 1 {
					return fmt.Errorf("%s has %d links to %s: %v", n.name, l[m.name], m.name, l)
				}
			}
		}
		return nil
	})
	expect("math visible everywhere after the partition healed", 5*time.Second, []*nodeProc{n1, n2, n3, n4}, p1, p3)

	// SIGINT n3: it leaves the cluster and says bye; its services go at once.
	n3.p.cmd.Process.Signal(syscall.SIGINT)
	if r := n3.p.wait(t, 10*time.Second); r.code != 0 {
		t.Fatalf("n3 exit: %v", r)
	}
	expect("gracefully stopped node's math withdrawn everywhere", 2*time.Second, []*nodeProc{n1, n2, n4}, p1)
}
