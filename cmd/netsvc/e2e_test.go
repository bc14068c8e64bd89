package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

// The end-to-end tests run the built binary as users do: nodes and
// clients as separate processes on free loopback ports.

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := buildBinary(t)

	t.Run("Call", func(t *testing.T) {
		a := startNodeProc(t, bin, "a", freePort(t), "--demo")
		r := runProc(t, bin, "call", "--server", a.addr, "math", "multiply", "6", "7")
		if r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
			t.Fatal(r)
		}
		r = runProc(t, bin, "call", "--server", a.addr, "math", "multiply", "6")
		if r.code != 1 || r.stderr != "call failed: 56 bad arguments: multiply: expected 2 arguments, received 1\n" {
			t.Fatal(r)
		}
	})

	t.Run("SubscribeThroughPeer", func(t *testing.T) {
		a := startNodeProc(t, bin, "a", freePort(t), "--demo")
		b := startNodeProc(t, bin, "b", freePort(t), "--connect", a.addr, "--retry", "500ms")
		aProcess := waitServices(t, bin, b.addr, "math", "seed")["seed"]
		r := runProc(t, bin, "subscribe", "--server", b.addr, "--count", "2", "seed", "next")
		l := lines(r.stdout)
		if r.code != 0 || len(l) != 2 {
			t.Fatal(r)
		}
		for _, line := range l {
			if !strings.Contains(line, `"publisher":"seed","address":"`+aProcess+"/") || !strings.Contains(line, `"subject":"next"`) {
				t.Fatalf("want a report of A's seed (%s): %s", aProcess, line)
			}
		}
	})

	t.Run("KillPeerFailsCallAndRelinks", func(t *testing.T) {
		aPort := freePort(t)
		a := startNodeProc(t, bin, "a", aPort, "--demo", "--log-level", "debug")
		b := startNodeProc(t, bin, "b", freePort(t), "--connect", a.addr, "--retry", "500ms")
		waitServices(t, bin, b.addr, "math", "seed")

		call := startProc(t, bin, "call", "--server", b.addr, "--timeout", "30s", "math", "sleep", "5000")
		nodetest.WaitFor(t, 10*time.Second, func() error {
			if !strings.Contains(a.stderr.String(), `msg="sleeping before replying"`) {
				return fmt.Errorf("the call has not reached math on A; call stderr: %s", call.stderr.String())
			}
			return nil
		})
		killed := time.Now()
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := call.wait(t, 10*time.Second)
		took := call.exited.Sub(killed)
		t.Logf("the call failed %v after A was killed: %s", took, strings.TrimSpace(r.stderr))
		if took >= time.Second {
			t.Errorf("the call failed %v after A was killed; want well under a second", took)
		}
		if r.code != 1 || !regexp.MustCompile(`^call failed: (60 service withdrawn before reply|61 link lost before reply): .+\n$`).MatchString(r.stderr) {
			t.Fatal(r)
		}
		nodetest.WaitFor(t, 5*time.Second, func() error {
			if names := serviceNames(t, bin, b.addr); len(names) != 0 {
				return fmt.Errorf("B still lists %v", names)
			}
			return nil
		})

		// A again, on the same port: B redials it after its retry delay.
		a2 := startNodeProc(t, bin, "a", aPort, "--demo")
		nodetest.WaitFor(t, 10*time.Second, func() error {
			r := runProc(t, bin, "call", "--server", b.addr, "--timeout", "2s", "math", "multiply", "6", "7")
			if r.code != 0 || r.stdout != "42\n" {
				return fmt.Errorf("math not callable through B yet: %v", r)
			}
			return nil
		})
		if n := strings.Count(b.stderr.String(), `msg="link up"`); n < 2 {
			t.Errorf("B logged %d link ups, want one for each A:\n%s", n, b.stderr.String())
		}
		if a2.stderr.String() == "" {
			t.Error("the new A logged nothing")
		}
	})

	t.Run("InterruptStopsNode", func(t *testing.T) {
		a := startNodeProc(t, bin, "a", freePort(t), "--demo")
		c := startProc(t, bin, "subscribe", "--server", a.addr, "seed", "next")
		nodetest.WaitFor(t, 10*time.Second, func() error {
			if !strings.Contains(c.stdout.String(), `"subject":"next"`) {
				return errors.New("the subscriber has no report yet")
			}
			return nil
		})
		sent := time.Now()
		if err := a.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r := a.wait(t, 5*time.Second)
		if r.code != 0 {
			t.Fatal(r)
		}
		if took := a.exited.Sub(sent); took > 2*time.Second {
			t.Errorf("the node took %v to stop", took)
		}
		if !strings.Contains(r.stderr, `msg=stopped`) {
			t.Errorf("no stopped line:\n%s", r.stderr)
		}
		// The subscriber stays, and stops on its interrupt too.
		if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if r := c.wait(t, 5*time.Second); r.code != 0 {
			t.Fatal(r)
		}
	})

	// SIGTERM drains: a call in flight (a 500 ms handler) gets its
	// result, whether the stopping node hosts the service or only relays
	// the call (its client then moves to the other node). Before the
	// drain it failed "60 withdrawn" about 100 ms after the signal.
	t.Run("SIGTERMDrainsCallsInFlight", func(t *testing.T) {
		for _, relayed := range []bool{false, true} {
			a := startNodeProc(t, bin, "a", freePort(t), "--demo", "--log-level", "debug")
			stopping, via := a, a
			if relayed {
				b := startNodeProc(t, bin, "b", freePort(t), "--connect", a.addr, "--retry", "200ms", "--log-level", "debug")
				waitServices(t, bin, b.addr, "math")
				stopping, via = b, b
			}
			call := startProc(t, bin, "call", "--server", via.addr, "--timeout", "10s", "math", "sleep", "500")
			nodetest.WaitFor(t, 10*time.Second, func() error {
				if !strings.Contains(a.stderr.String(), "sleeping before replying") {
					return errors.New("the call has not reached math yet")
				}
				return nil
			})
			sent := time.Now()
			if err := stopping.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			r := call.wait(t, 10*time.Second)
			if r.code != 0 || r.stdout != "500\n" {
				t.Fatalf("relayed %v: the call in flight at SIGTERM: %v", relayed, r)
			}
			n := stopping.wait(t, 20*time.Second)
			if n.code != 0 || !strings.Contains(n.stderr, "msg=drained") {
				t.Fatalf("relayed %v: the node's drain: %v", relayed, n)
			}
			// The answer came before the node went (the call printed it);
			// which of the two processes exits first is up to the
			// scheduler, so the times are reported, not compared.
			t.Logf("relayed %v: the call in flight answered %v after SIGTERM (its process exited then), the node exited %v after SIGTERM",
				relayed, call.exited.Sub(sent).Round(time.Millisecond), stopping.exited.Sub(sent).Round(time.Millisecond))
		}
	})

	t.Run("UsageErrors", func(t *testing.T) {
		r := runProc(t, bin, "nosuch")
		if r.code != 2 || r.stderr != "netsvc: unknown command \"nosuch\"\nrun 'netsvc help' for usage\n" {
			t.Fatal(r)
		}
		r = runProc(t, bin, "node", "--frobnicate")
		if r.code != 2 || !strings.HasPrefix(r.stderr, "netsvc node: flag provided but not defined: -frobnicate\n") {
			t.Fatal(r)
		}
	})
}

// buildBinary builds the command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	bin := filepath.Join(t.TempDir(), "netsvc")
	out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port free a moment ago, below the
// ephemeral range: a port the kernel hands to outgoing connections could
// be taken, by another test running meanwhile, before the process the
// test starts binds it.
func freePort(t *testing.T) int {
	t.Helper()
	ps, err := nodetest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// proc is a running netsvc process.
type proc struct {
	cmd            *exec.Cmd
	addr           string // for nodes
	stdout, stderr *syncBuffer
	done           chan struct{}
	exited         time.Time
	code           int
}

// startProc starts the binary; the process is killed when the test ends.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exited = time.Now()
		p.code = 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			p.code = exit.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit by itself.
func (p *proc) wait(t *testing.T, d time.Duration) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%v still running after %v\nstderr: %s", p.cmd.Args, d, p.stderr.String())
	}
	return result{code: p.code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// runProc runs the binary to its end.
func runProc(t *testing.T, bin string, args ...string) result {
	t.Helper()
	start := time.Now()
	p := startProc(t, bin, args...)
	r := p.wait(t, 30*time.Second)
	r.took = p.exited.Sub(start)
	return r
}

// startNodeProc starts "netsvc node" on a port, without gossip and
// console, and waits until it listens.
func startNodeProc(t *testing.T, bin, name string, port int, extra ...string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"node", "--name", name, "--listen", addr, "--gossip", "off", "--console", "off",
		"--demo-interval", "100ms"}, extra...)
	p := startProc(t, bin, args...)
	p.addr = addr
	nodetest.WaitFor(t, 10*time.Second, func() error {
		select {
		case <-p.done:
			t.Fatalf("node %s exited with %d:\n%s", name, p.code, p.stderr.String())
		default:
		}
		if !strings.Contains(p.stderr.String(), fmt.Sprintf("netsvc node %q listening on %s", name, addr)) {
			return fmt.Errorf("node %s is not listening yet", name)
		}
		return nil
	})
	return p
}

// serviceNames lists what "services --json" shows: name → process.
func serviceNames(t *testing.T, bin, server string) map[string]string {
	t.Helper()
	r := runProc(t, bin, "services", "--server", server, "--json")
	if r.code != 0 {
		t.Fatal(r)
	}
	var list []struct{ Name, Process string }
	if err := json.Unmarshal(bytes.TrimSpace([]byte(r.stdout)), &list); err != nil {
		t.Fatal(err, r)
	}
	out := map[string]string{}
	for _, b := range list {
		out[b.Name] = b.Process
	}
	return out
}

// waitServices waits until the node lists the services.
func waitServices(t *testing.T, bin, server string, names ...string) map[string]string {
	t.Helper()
	var got map[string]string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		got = serviceNames(t, bin, server)
		for _, n := range names {
			if got[n] == "" {
				return fmt.Errorf("%s lists %v, want %v", server, got, names)
			}
		}
		return nil
	})
	return got
}
