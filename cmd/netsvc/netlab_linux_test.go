package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A netLab is a small network made by a test: one network namespace per
// host, each with a veth pair whose host end is a port of a bridge, and a
// second bridge to cut the network with. Cutting moves some hosts' ports
// onto the second bridge: their packets to the others are then dropped
// without a word (no reset, no ICMP), as when a switch link goes down;
// healing moves them back.
//
// Names: everything the lab makes on the host starts with labPrefix, then
// the test process's pid (5 base-36 digits) and two random characters,
// so a lab whose test process is gone can be told apart and removed by
// the next run (a test binary killed by its timeout runs no cleanup).
// Interface names stay within the kernel's 15 characters.

const labPrefix = "nsvp"

// labHost is a host of a lab: a network namespace with one address.
type labHost struct {
	name string // a, b, ...
	ns   string // network namespace, under /run/netns
	veth string // the host end of its veth pair, a port of a bridge
	ip   string // its address on the lab network (its end is eth0)
	http *http.Client
}

type netLab struct {
	t      testing.TB
	id     string // labPrefix + pid + random: the stem of every name
	bridge [2]string
	hosts  []*labHost
}

// needLab skips the test unless network namespaces can be made here:
// Linux, root, and the ip command.
func needLab(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("makes network namespaces and runs node processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (ip netns add); CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to make network namespaces")
	}
}

// newNetLab makes a lab with a host for each name, all on one bridge,
// at 10.213.X.1, .2, ... (X random). Everything is removed when the test
// ends; leftovers of labs whose test process is gone are removed first.
func newNetLab(t testing.TB, names ...string) *netLab {
	t.Helper()
	needLab(t)
	removeStaleLabs(t)
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	id := labPrefix + strings.Repeat("0", max(0, 5-len(pid))) + pid +
		string(digits[rand.IntN(36)]) + string(digits[rand.IntN(36)])
	l := &netLab{t: t, id: id, bridge: [2]string{id + "x", id + "y"}}
	t.Cleanup(l.remove)

	// The first command says whether namespaces can be made at all.
	if out, err := exec.Command("ip", "netns", "add", id+"-probe").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	l.ip("netns", "del", id+"-probe")
	subnet := fmt.Sprintf("10.213.%d", rand.IntN(256))
	var batch []string
	for _, br := range l.bridge {
		batch = append(batch, "link add "+br+" type bridge", "link set "+br+" up")
	}
	for i, name := range names {
		h := &labHost{name: name, ns: id + "-" + name, veth: id + strconv.Itoa(i), ip: fmt.Sprintf("%s.%d", subnet, i+1)}
		l.ip("netns", "add", h.ns)
		batch = append(batch, "link add "+h.veth+" type veth peer name eth0 netns "+h.ns,
			"link set "+h.veth+" master "+l.bridge[0]+" up")
		h.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ctx, h.ns, addr)
			},
			MaxIdleConnsPerHost: 2,
		}}
		l.hosts = append(l.hosts, h)
	}
	l.batch(false, batch...)
	for _, h := range l.hosts {
		l.ip("-n", h.ns, "link", "set", "lo", "up")
		l.ip("-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
		l.ip("-n", h.ns, "link", "set", "eth0", "up")
	}
	return l
}

// cut moves the hosts' ports onto the second bridge, all in one command:
// from then on they reach each other, and the others each other, but
// nothing crosses between the two groups.
func (l *netLab) cut(hosts ...*labHost) {
	l.t.Helper()
	var batch []string
	for _, h := range hosts {
		batch = append(batch, "link set "+h.veth+" master "+l.bridge[1])
	}
	l.batch(false, batch...)
}

// heal moves every port back onto the first bridge.
func (l *netLab) heal() {
	l.t.Helper()
	var batch []string
	for _, h := range l.hosts {
		batch = append(batch, "link set "+h.veth+" master "+l.bridge[0])
	}
	l.batch(false, batch...)
}

// remove deletes the lab: its namespaces (which takes their veth pairs
// along) and its bridges. The processes in the namespaces must be gone.
func (l *netLab) remove() {
	var batch []string
	for _, h := range l.hosts {
		h.http.CloseIdleConnections()
		batch = append(batch, "netns del "+h.ns, "link del "+h.veth)
	}
	for _, br := range l.bridge {
		batch = append(batch, "link del "+br)
	}
	l.batch(true, batch...)
}

// ip runs the ip command, failing the test if it fails.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// batch runs ip commands from one process; with force it goes on past
// errors and reports none (for removing what may be gone already).
func (l *netLab) batch(force bool, cmds ...string) {
	l.t.Helper()
	if len(cmds) == 0 {
		return
	}
	args := []string{"-batch", "-"}
	if force {
		args = append([]string{"-force"}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil && !force {
		l.t.Fatalf("ip -batch: %v: %s\ncommands:\n%s", err, strings.TrimSpace(string(out)), strings.Join(cmds, "\n"))
	}
}

// removeStaleLabs removes the namespaces and interfaces of labs whose
// test process is gone, killing what still runs in those namespaces.
func removeStaleLabs(t testing.TB) {
	t.Helper()
	stale := func(name string) bool {
		if !strings.HasPrefix(name, labPrefix) || len(name) < len(labPrefix)+5 {
			return false
		}
		pid, err := strconv.ParseInt(name[len(labPrefix):len(labPrefix)+5], 36, 64)
		if err != nil {
			return false
		}
		_, err = os.Stat("/proc/" + strconv.FormatInt(pid, 10))
		return errors.Is(err, os.ErrNotExist)
	}
	var batch []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !stale(f[0]) {
				continue
			}
			if pids, err := exec.Command("ip", "netns", "pids", f[0]).Output(); err == nil {
				for _, p := range strings.Fields(string(pids)) {
					if n, err := strconv.Atoi(p); err == nil {
						_ = unix.Kill(n, unix.SIGKILL)
					}
				}
			}
			batch = append(batch, "netns del "+f[0])
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				batch = append(batch, "link del "+name)
			}
		}
	}
	if len(batch) > 0 {
		t.Logf("removing leftovers of earlier runs: %s", strings.Join(batch, "; "))
		(&netLab{t: t}).batch(true, batch...)
	}
}

// dialIn dials a TCP address from inside the network namespace ns: the
// socket is made on an OS thread moved into ns for the purpose, and
// stays in ns for its life. The thread is moved back before it is given
// back to the runtime. (Should that fail, the thread is left locked and
// ends with its goroutine; but threads must not end lightly here: a
// process started with Pdeathsig is killed when the thread that started
// it ends, and any thread may have started one.)
func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("open this thread's namespace: %w", err)}
			return
		}
		defer unix.Close(home)
		there, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("open namespace %s: %w", ns, err)}
			return
		}
		defer unix.Close(there)
		if err := unix.Setns(there, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr) // one address: no parallel dials on other threads
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// get reads a JSON answer of an HTTP server in h's namespace.
func (h *labHost) get(url string, v any) error {
	resp, err := h.http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s in %s: %s", url, h.name, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// start runs a program in h's namespace (through ip netns exec, which
// enters it and then executes the program itself). The process gets
// SIGKILL if the test process dies, and is killed when the test ends.
func (h *labHost) start(t testing.TB, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.exited = time.Now()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			p.code = exit.ExitCode()
		case err != nil:
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}
