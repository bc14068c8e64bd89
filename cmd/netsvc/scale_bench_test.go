package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkMeshTwenty starts 20 `netsvc node` processes at once on this
// machine, finding each other by gossip (fast preset, a chain of --join:
// each node's seed is the one started before it), four of them with the
// demo services, and measures the time from the last process start until
// the mesh has converged: every node has exactly one active link to each
// of the 19 others and sees the math and seed services of every demo
// node (polled on each node's console, /api/connections and
// /api/services). It reports the seconds, and the nodes' mean resident
// memory once converged. The only assertion: it converges within 60 s.
//
//	go test -run '^$' -bench MeshTwenty -benchtime 1x -count 3 ./cmd/netsvc/
func BenchmarkMeshTwenty(b *testing.B) {
	const (
		nodes = 20
		bound = 60 * time.Second
	)
	bin := meshBinary(b)
	client := &http.Client{Timeout: 2 * time.Second}
	var sum, sumFirst time.Duration
	var rss float64
	for i := 0; i < b.N; i++ {
		mesh := make([]*meshNode, nodes)
		var demo []string
		taken := map[string]bool{}
		addr := func() string {
			for {
				if a := meshAddr(b); !taken[a] {
					taken[a] = true
					return a
				}
			}
		}
		for k := range mesh {
			n := &meshNode{name: fmt.Sprintf("n%02d", k), listen: addr(), gossip: addr(), console: addr(), demo: k%5 == 0}
			if n.demo {
				demo = append(demo, n.name)
			}
			mesh[k] = n
		}
		first := time.Now()
		for k, n := range mesh {
			args := []string{"node", "--name", n.name, "--listen", n.listen, "--gossip", n.gossip, "--gossip-preset", "fast",
				"--console", n.console, "--retry", "200ms", "--log-level", "warn"}
			if k > 0 {
				args = append(args, "--join", mesh[k-1].gossip)
			}
			if n.demo {
				args = append(args, "--demo")
			}
			n.start(b, bin, args)
		}
		last := time.Now()
		deadline := last.Add(bound)
		for {
			err := meshConverged(client, mesh, demo)
			if err == nil {
				break
			}
			for _, n := range mesh {
				if n.exited() {
					b.Fatalf("node %s exited:\n%s", n.name, n.stderr.String())
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("the mesh of %d processes did not converge within %v: %v", nodes, bound, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took, tookFirst := time.Since(last), time.Since(first)
		sum += took
		sumFirst += tookFirst
		b.Logf("converged %v after the last process started (%v after the first)", took.Round(time.Millisecond), tookFirst.Round(time.Millisecond))
		b.StopTimer()
		var kib float64
		for _, n := range mesh {
			kib += n.rssKiB()
		}
		rss += kib / nodes / 1024
		for _, n := range mesh {
			n.stop()
		}
		b.StartTimer()
	}
	b.ReportMetric(sum.Seconds()/float64(b.N), "s/converge")
	b.ReportMetric(sumFirst.Seconds()/float64(b.N), "s/from-first-start")
	b.ReportMetric(rss/float64(b.N), "MiB-RSS/node")
}

// meshConverged checks every node: one active link to each other node,
// and the math and seed services of every demo node visible.
func meshConverged(client *http.Client, mesh []*meshNode, demo []string) error {
	for _, n := range mesh {
		var conns struct {
			Links []struct {
				RemoteNode string `json:"remote_node"`
				State      string `json:"state"`
			} `json:"links"`
		}
		if err := meshGet(client, n.console, "/api/connections", &conns); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		active := map[string]int{}
		for _, l := range conns.Links {
			if l.State == "active" {
				active[l.RemoteNode]++
			}
		}
		for _, m := range mesh {
			if m != n && active[m.name] != 1 {
				return fmt.Errorf("%s has %d active links to %s (%d peers linked)", n.name, active[m.name], m.name, len(active))
			}
		}
		var services []struct {
			Name string `json:"name"`
			Node string `json:"node"`
		}
		if err := meshGet(client, n.console, "/api/services", &services); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		seen := map[string]bool{}
		for _, s := range services {
			seen[s.Name+"@"+s.Node] = true
		}
		for _, d := range demo {
			for _, name := range []string{"math", "seed"} {
				if !seen[name+"@"+d] {
					return fmt.Errorf("%s does not see %s of %s", n.name, name, d)
				}
			}
		}
	}
	return nil
}

func meshGet(client *http.Client, console, path string, v any) error {
	resp, err := client.Get("http://" + console + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// meshNode is one `netsvc node` process of the mesh.
type meshNode struct {
	name, listen, gossip, console string
	demo                          bool
	cmd                           *exec.Cmd
	stderr                        meshBuffer
	done                          chan struct{}
}

func (n *meshNode) start(b *testing.B, bin string, args []string) {
	b.Helper()
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stderr = &n.stderr
	n.done = make(chan struct{})
	if err := n.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	b.Cleanup(n.stop)
}

func (n *meshNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// stop kills the process and waits for it.
func (n *meshNode) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.done
}

// rssKiB reads the process's resident memory.
func (n *meshNode) rssKiB() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// meshBuffer is a bytes.Buffer safe for a process's output.
type meshBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (m *meshBuffer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.Write(p)
}

func (m *meshBuffer) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// meshAddr returns a loopback address whose port was free a moment ago.
func meshAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// meshBinary builds the command once for the benchmark.
func meshBinary(b *testing.B) string {
	b.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go command to build with")
	}
	bin := filepath.Join(b.TempDir(), "netsvc")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
