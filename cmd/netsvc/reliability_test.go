package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// The reliability tests run a real "netsvc node" process and check
// rules 25 and 26 from outside, as an operator would see them: in its
// log, its console (/api/connections, /metrics) and its memory (VmRSS).

// TestE2EBadInputBounded checks rule 26 against a node process:
// hundreds of connections that never finish the handshake, and a loop of
// bad inputs (garbage, truncated and oversized frames, unknown kinds, an
// HTTP request, a TLS hello, a wrong group or version), each closed with a
// reason in the log, while a client linked before keeps calling math
// without a single failure; afterwards the node's links are back to that
// one client and its memory grew by less than maxGrowth.
func TestE2EBadInputBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a node process")
	}
	const (
		handshake = 2 * time.Second // the node's --handshake-timeout
		waves     = 3               // of silent connections, 300 ms apart
		perWave   = 100
		badFor    = 3 * time.Second // how long the loop of bad inputs runs
		maxGrowth = 64 << 20        // bytes of RSS (and Go heap) the node may gain
	)
	bin := buildBinary(t)
	con := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	x := startNodeProc(t, bin, "x", freePort(t), "--demo", "--console", con, "--log-level", "debug",
		"--handshake-timeout", handshake.String())
	good := startClientNode(t, "good", x.addr)
	calls := callLoop(t, good, 5*time.Millisecond)
	nodetest.WaitFor(t, 10*time.Second, func() error { return linkCount(t, con, 1) })
	baseRSS, baseHeap := vmRSS(t, x.cmd.Process.Pid), metric(t, con, "go_memstats_heap_inuse_bytes", "")
	t.Logf("baseline: RSS %s, Go heap in use %s, %d goroutines", mib(baseRSS), mib(baseHeap), metric(t, con, "go_goroutines", ""))

	// Hundreds of connections from one host that never finish the
	// handshake: silent, or stopping after the first byte, or half way
	// through the hello. The node holds at most 64 of one host's at once
	// (connection.DefaultHandshakingPerHost); the others are refused at
	// once with the reason, and the held ones close at the handshake
	// timeout. The node's log gets a few lines, not one per connection.
	const perHost = connection.DefaultHandshakingPerHost
	hello := connection.AppendHello(nil, connection.Hello{Protocol: connection.Protocol, Process: registry.NewProcessID(),
		Node: "half-open", Role: registry.RoleClient})
	type conn struct {
		c  net.Conn
		at time.Time
	}
	logLines := func() int { return strings.Count(x.stderr.String(), "level=WARN") }
	linesBefore := logLines()
	var halfOpen []conn
	peak := 0
	for w := range waves {
		if w > 0 {
			<-time.After(300 * time.Millisecond) // paces the waves; nothing waits on it
		}
		for i := range perWave {
			c := dial(t, x.addr)
			switch i % 3 {
			case 1:
				writeAll(t, c, hello[:1])
			case 2:
				writeAll(t, c, hello[:len(hello)/2])
			}
			halfOpen = append(halfOpen, conn{c, time.Now()})
		}
		peak = max(peak, len(links(t, con)))
	}
	// Another host links meanwhile, at once: the flood from one host
	// does not crowd it out.
	other, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}).Dial("tcp", x.addr)
	if err != nil {
		t.Fatalf("dialling from 127.0.0.2: %v", err)
	}
	if _, err := connection.Handshake(other, connection.HandshakeConfig{Dialer: true, Timeout: handshake / 2,
		Local: connection.Hello{Protocol: connection.Protocol, Process: registry.NewProcessID(), Node: "other-host", Role: registry.RoleClient}}); err != nil {
		t.Errorf("a client of another host during the flood: %v", err)
	}
	other.Close()
	if peak > 1+perHost+1 {
		t.Errorf("the node listed %d links at once, want at most the client's, %d held and the other host's", peak, perHost)
	}
	var early, refused, held atomic.Int32
	var closing sync.WaitGroup
	for _, h := range halfOpen {
		closing.Add(1)
		go func() {
			defer closing.Done()
			h.c.SetReadDeadline(time.Now().Add(handshake + 5*time.Second))
			got, err := io.ReadAll(h.c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("a half-open connection stayed open past %v", handshake+5*time.Second)
			}
			switch {
			case bytes.Contains(got, []byte("too many connections in their handshake")):
				refused.Add(1)
			case time.Since(h.at) < handshake-100*time.Millisecond:
				early.Add(1)
			default:
				held.Add(1)
			}
			h.c.Close()
		}()
	}
	closing.Wait()
	t.Logf("%d half-open connections from one host: %d held (at most %d links listed at once) and closed at the handshake timeout, %d refused at once; all gone within %v of the first",
		len(halfOpen), held.Load(), peak, refused.Load(), time.Since(halfOpen[0].at).Round(time.Millisecond))
	if n := early.Load(); n > 0 {
		t.Errorf("%d half-open connections closed before the handshake timeout without a reason", n)
	}
	if h := held.Load(); h == 0 || h > perHost {
		t.Errorf("%d connections held through their handshake timeout, want 1 to %d", h, perHost)
	}
	if n := logLines() - linesBefore; n > 30 {
		t.Errorf("the node logged %d warnings for %d strangers; want a few", n, len(halfOpen))
	}
	nodetest.WaitFor(t, 5*time.Second, func() error {
		if n := metric(t, con, "netsvc_link_refusals_total", `reason="busy"`); n < int64(refused.Load()) {
			return fmt.Errorf("netsvc_link_refusals_total{reason=\"busy\"} = %v, want %d", n, refused.Load())
		}
		return nil
	})

	// A loop of bad inputs, each on its own connection.
	cases := badInputs(t, x.addr)
	rounds := 0
	deadline := time.Now().Add(badFor)
	for time.Now().Before(deadline) {
		for _, bc := range cases {
			c := dial(t, x.addr)
			local := c.LocalAddr().String()
			start := time.Now()
			reason := bc.send(t, c)
			if err := readUntilClosed(c, handshake+5*time.Second); err != nil {
				t.Fatalf("%s: %v", bc.name, err)
			}
			if d := time.Since(start); d > handshake/2 {
				t.Errorf("%s: closed after %v; want at once", bc.name, d)
			}
			if reason != "" && !strings.Contains(reason, bc.reason) {
				t.Errorf("%s: the node's reject frame says %q, want %q", bc.name, reason, bc.reason)
			}
			if rounds == 0 {
				nodetest.WaitFor(t, 5*time.Second, func() error {
					for _, l := range strings.Split(x.stderr.String(), "\n") {
						if strings.Contains(l, "remote="+local) && strings.Contains(l, "reason=") && strings.Contains(l, bc.reason) {
							return nil
						}
					}
					return fmt.Errorf("%s: no log line for %s with a reason containing %q", bc.name, local, bc.reason)
				})
			}
			c.Close()
		}
		rounds++
	}
	t.Logf("%d rounds of %d bad inputs in %v", rounds, len(cases), badFor)

	// The node is as before: one link, the good client's; calls answered.
	nodetest.WaitFor(t, 10*time.Second, func() error { return linkCount(t, con, 1) })
	ok, failed := calls.stop()
	if ok < 100 || len(failed) > 0 {
		t.Errorf("the good client's calls meanwhile: %d answered, %d failed: %v", ok, len(failed), failed)
	}
	rss, heap := vmRSS(t, x.cmd.Process.Pid), metric(t, con, "go_memstats_heap_inuse_bytes", "")
	t.Logf("after: RSS %s (%+.1f MiB), Go heap in use %s, %d goroutines; the good client made %d calls", mib(rss),
		float64(rss-baseRSS)/(1<<20), mib(heap), metric(t, con, "go_goroutines", ""), ok)
	if rss-baseRSS > maxGrowth || heap-baseHeap > maxGrowth {
		t.Errorf("the node's memory grew from RSS %s, heap %s to RSS %s, heap %s: more than %s",
			mib(baseRSS), mib(baseHeap), mib(rss), mib(heap), mib(maxGrowth))
	}

	// Nothing of the bad connections is left running: SIGQUIT makes the
	// node print its goroutines (and exit). The good client's link has a
	// reader and a writer; idle mailbox workers stay a while
	// (service/dispatcher.go), however many there were at the peak.
	select {
	case <-x.done:
		t.Fatalf("the node exited: %s", x.stderr.String())
	default:
	}
	before := len(x.stderr.String())
	x.cmd.Process.Signal(syscall.SIGQUIT)
	x.wait(t, 10*time.Second)
	stacks := strings.Split(x.stderr.String()[before:], "\ngoroutine ")[1:]
	linkG, workers := 0, 0
	for _, st := range stacks {
		switch {
		case strings.Contains(st, "netsvc/actors/connection."):
			linkG++
		case strings.Contains(st, "netsvc/service.(*workerDispatcher).worker"):
			workers++
		}
	}
	t.Logf("the node's goroutines at the end: %d, %d of links, %d idle mailbox workers", len(stacks), linkG, workers)
	if len(stacks) == 0 || linkG > 2 {
		t.Errorf("%d goroutines of links left (want the good client's 2):\n%s", linkG, strings.Join(stacks, "\ngoroutine "))
	}
}

// badInput is one kind of bad input: send writes it and returns the
// reason of the node's reject frame, if it must send one; reason is what
// the node's log (and reject frame) must say.
type badInput struct {
	name   string
	reason string
	send   func(t *testing.T, c net.Conn) string
}

func badInputs(t *testing.T, addr string) []badInput {
	rng := rand.New(rand.NewPCG(26, 26))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	garbage[0] = 0xde // not a small length, whatever the seed
	helloOf := func(h connection.Hello) connection.Hello {
		if h.Protocol == 0 {
			h.Protocol = connection.Protocol
		}
		h.Process, h.Node, h.Role = registry.NewProcessID(), "bad-input", registry.RoleClient
		return h
	}
	hello := func(h connection.Hello) []byte { return connection.AppendHello(nil, helloOf(h)) }
	handshake := func(t *testing.T, c net.Conn, h connection.Hello) error {
		_, err := connection.Handshake(c, connection.HandshakeConfig{Local: helloOf(h), Dialer: true})
		return err
	}
	get := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
	tlsHello := captureClientHello(t)
	rejected := func(h connection.Hello) func(t *testing.T, c net.Conn) string {
		return func(t *testing.T, c net.Conn) string {
			reason, ok := strings.CutPrefix(fmt.Sprint(handshake(t, c, h)), "rejected by peer: ")
			if !ok {
				t.Fatalf("the handshake was not refused with a reject frame: %s", reason)
			}
			return reason
		}
	}
	return []badInput{
		{"random bytes", "not a netsvc peer", func(t *testing.T, c net.Conn) string { writeAll(t, c, garbage); return "" }},
		{"truncated hello then EOF", "peer closed the link", func(t *testing.T, c net.Conn) string {
			h := hello(connection.Hello{})
			writeAll(t, c, h[:len(h)-3])
			c.(*net.TCPConn).CloseWrite()
			return ""
		}},
		{"absurd length", "would be 1099511627776 bytes", func(t *testing.T, c net.Conn) string {
			writeAll(t, c, append(binary.AppendUvarint(nil, 1<<40), byte(connection.FrameHello), 'N', 'S', 'V', 'C'))
			return ""
		}},
		{"unknown frame kind", "unknown(127)", func(t *testing.T, c net.Conn) string {
			if err := handshake(t, c, connection.Hello{}); err != nil {
				t.Fatal(err)
			}
			readUntilSynced(t, c)
			writeAll(t, c, []byte{2, 0x7f, 0})
			return ""
		}},
		{"bad envelope", "envelope", func(t *testing.T, c net.Conn) string {
			if err := handshake(t, c, connection.Hello{}); err != nil {
				t.Fatal(err)
			}
			readUntilSynced(t, c)
			writeAll(t, c, []byte{4, byte(connection.FrameEnvelope), 99, 0, 0})
			return ""
		}},
		{"HTTP request", `not a netsvc peer: it starts with \"GET`, func(t *testing.T, c net.Conn) string {
			writeAll(t, c, []byte(get))
			return ""
		}},
		{"TLS ClientHello", "not a netsvc peer", func(t *testing.T, c net.Conn) string { writeAll(t, c, tlsHello); return "" }},
		{"wrong group", "exchange group mismatch", rejected(connection.Hello{Group: "elsewhere"})},
		{"wrong version", "protocol version mismatch", rejected(connection.Hello{Protocol: connection.Protocol + 1})},
	}
}

// TestE2ESlowConsumer checks rule 25 against a node process: for
// 10 s a publisher (a client process of the node) publishes as fast as it
// can to a subscriber that stopped reading its socket. The node's memory
// stays within a bound, its queue to the subscriber too; reports are
// dropped oldest first and counted (in /api/connections and /metrics);
// another client's calls go on meanwhile; a request to the stalled
// subscriber's service fails at once with "overloaded"; and once the
// subscriber reads again it gets the newest reports, in order.
func TestE2ESlowConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a node process for 10 s")
	}
	const (
		flood      = 10 * time.Second
		reportSize = 4 << 10
		burst      = 64
		maxGrowth  = 64 << 20 // bytes of RSS the node may gain
		maxQueued  = 4 << 20  // bytes the node may queue for the subscriber (its soft limit is 1 MiB)
	)
	bin := buildBinary(t)
	con := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	x := startNodeProc(t, bin, "x", freePort(t), "--demo", "--console", con)

	// The publisher: a client process with a service "feed" whose burst(n)
	// publishes n numbered reports and returns the last number.
	type tick struct {
		Seq int64
		Pad []byte
	}
	pub := startClientNode(t, "publisher", x.addr)
	feed, err := pub.Runtime().Start(context.Background(), "feed", service.SetupFunc(func(a *service.Agent) error {
		var seq int64
		pad := make([]byte, reportSize)
		a.Export("burst", func(n int) int64 {
			for range n {
				seq++
				_ = a.Publish("data", tick{seq, pad}) // congestion is the point
			}
			return seq
		})
		a.Export("subscribers", func() int { return len(a.Subscribers()) })
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}

	// The subscriber: a raw client that announces a service "stalled",
	// subscribes to feed, then never reads again; it writes a ping now and
	// then, so the node does not close it as silent.
	sub := dial(t, x.addr)
	subPID := registry.NewProcessID()
	if _, err := connection.Handshake(sub, connection.HandshakeConfig{Dialer: true, Local: connection.Hello{Protocol: connection.Protocol,
		Process: subPID, Node: "stalled-subscriber", Role: registry.RoleClient}}); err != nil {
		t.Fatal(err)
	}
	// x must know feed before the subscription goes to it, or x has no
	// route for it and it is lost (under load feed's announcement can
	// come after the dump).
	subReader := readUntilSynced(t, sub, "feed")
	stalled := service.Address{Process: subPID, ID: 1}
	var b []byte
	b = connection.AppendAnnounce(b, registry.Change{Kind: service.Available, Process: true,
		Binding: service.Binding{Address: service.Address{Process: subPID}, Node: "stalled-subscriber"}})
	b = connection.AppendAnnounce(b, registry.Change{Kind: service.Available,
		Binding: service.Binding{Name: "stalled", Address: stalled, Audience: "*", Node: "stalled-subscriber"}})
	b = connection.AppendSynced(b)
	b = connection.AppendEnvelope(b, &registry.Envelope{Kind: registry.KindSubscribe, To: feed, From: stalled, Subject: "data"})
	writeAll(t, sub, b)
	nodetest.WaitFor(t, 10*time.Second, func() error {
		n, err := service.CallFor[int](ctxFor(t, 5*time.Second), pub.Runtime(), feed, "subscribers")
		if err != nil || n != 1 {
			return fmt.Errorf("feed has %d subscribers (%v), want 1", n, err)
		}
		return nil
	})
	stopPing := make(chan struct{})
	var pinging sync.WaitGroup
	pinging.Add(1)
	go func() {
		defer pinging.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-tick.C:
				sub.SetWriteDeadline(time.Now().Add(time.Second))
				sub.Write(connection.AppendPing(nil, connection.FramePing, 1))
			}
		}
	}()
	defer func() { close(stopPing); pinging.Wait() }()

	other := startClientNode(t, "other", x.addr)
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if len(other.Runtime().Lookup("stalled")) != 1 {
			return errors.New("the other client does not see the stalled subscriber's service yet")
		}
		return nil
	})
	baseRSS := vmRSS(t, x.cmd.Process.Pid)
	subLink := func() (exchange.LinkStatus, error) {
		for _, l := range links(t, con) {
			if l.RemoteProcess == subPID {
				return l, nil
			}
		}
		return exchange.LinkStatus{}, errors.New("the node has no link to the subscriber")
	}

	// The flood, while the other client calls math, and the node's memory
	// and queue are sampled.
	calls := callLoop(t, other, 20*time.Millisecond)
	var last atomic.Int64
	floodDone := make(chan error, 1)
	go func() {
		end := time.Now().Add(flood)
		for time.Now().Before(end) {
			seq, err := service.CallFor[int64](ctxFor(t, 10*time.Second), pub.Runtime(), feed, "burst", burst)
			if err != nil {
				floodDone <- err
				return
			}
			last.Store(seq)
		}
		floodDone <- nil
	}()
	maxRSS, maxQ := baseRSS, int64(0)
	sample := time.NewTicker(250 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case err := <-floodDone:
			if err != nil {
				t.Fatalf("publishing: %v", err)
			}
			waiting = false
		case <-sample.C:
		}
		maxRSS = max(maxRSS, vmRSS(t, x.cmd.Process.Pid))
		l, err := subLink()
		if err != nil || l.State != "active" {
			t.Fatalf("the node's link to the stalled subscriber: %+v, %v", l, err)
		}
		maxQ = max(maxQ, l.Queued)
	}
	sample.Stop()
	published := last.Load()
	ok, failed := calls.stop()

	l, err := subLink()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reports of %d bytes published in %v; the node dropped %d on the stalled link, queued at most %s; RSS %s, at most %s (%+.1f MiB)",
		published, reportSize, flood, l.Dropped, mib(maxQ), mib(baseRSS), mib(maxRSS), float64(maxRSS-baseRSS)/(1<<20))
	if l.Dropped == 0 {
		t.Errorf("/api/connections shows no drops on the stalled link: %+v", l)
	}
	if maxQ > maxQueued {
		t.Errorf("the node queued up to %s for the stalled subscriber, over %s", mib(maxQ), mib(maxQueued))
	}
	if maxRSS-baseRSS > maxGrowth {
		t.Errorf("the node's RSS grew from %s to %s, more than %s", mib(baseRSS), mib(maxRSS), mib(maxGrowth))
	}
	if d := metric(t, con, "netsvc_link_drops_total", `peer="clients"`); d < int64(l.Dropped) {
		t.Errorf("/metrics counts %d drops on client links, /api/connections %d on the stalled one", d, l.Dropped)
	}
	if ok < 100 || len(failed) > 0 {
		t.Errorf("the other client's calls during the flood: %d answered, %d failed: %v", ok, len(failed), failed)
	}
	for _, ol := range links(t, con) {
		if ol.RemoteNode == "other" && (ol.Dropped != 0 || ol.Refused != 0 || ol.State != "active") {
			t.Errorf("the other client's link was touched: %+v", ol)
		}
	}

	// A request to the stalled subscriber's service is refused at once:
	// the queue has no room for it. (It is larger than a report: the
	// room dropping leaves is less than one report. A request smaller
	// than that room is queued, and waits for its deadline.)
	start := time.Now()
	_, err = other.Runtime().Call(ctxFor(t, 10*time.Second), service.Name("stalled"), "echo", make([]byte, 2*reportSize))
	var f *service.Failure
	if !errors.As(err, &f) || f.Code != service.CodeOverloaded {
		t.Errorf("a request to the stalled subscriber: %v; want 62 overloaded", err)
	} else {
		t.Logf("a request to the stalled subscriber failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the request to the stalled subscriber took %v to fail", d)
	}
	if l, _ := subLink(); l.Refused == 0 {
		t.Errorf("/api/connections shows no refused request on the stalled link: %+v", l)
	}

	// Reading again, the subscriber gets reports in order up to the last
	// one published: what was dropped was the oldest.
	var seqs []int64
	sub.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(seqs) == 0 || seqs[len(seqs)-1] < published {
		kind, frame, err := readFrame(subReader)
		if err != nil {
			t.Fatalf("reading the reports after %d (last %v): %v", len(seqs), seqs[max(0, len(seqs)-1):], err)
		}
		if kind != connection.FrameEnvelope {
			continue
		}
		var e registry.Envelope
		if _, err := connection.DecodeFrame(frame, &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind != registry.KindReport {
			continue
		}
		var v tick
		if err := (service.Payload{ContentType: e.ContentType, Data: e.Data}).Decode(&v); err != nil {
			t.Fatal(err)
		}
		if len(seqs) > 0 && v.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("report %d after report %d: out of order", v.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, v.Seq)
	}
	gaps := 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			gaps++
		}
	}
	t.Logf("the subscriber read %d of %d reports, in order, in %d runs, the last the newest (%d)", len(seqs), published, gaps+1, published)
	if gaps == 0 || int64(len(seqs)) >= published {
		t.Errorf("the subscriber got %d of %d reports without a gap: nothing was dropped?", len(seqs), published)
	}

	// None was lost silently (rule 24): each report was read, or
	// counted as dropped by the node or, when the node itself fell
	// behind, by the publisher's own link.
	l, err = subLink()
	if err != nil {
		t.Fatal(err)
	}
	var atPublisher uint64
	for _, pl := range pub.Links() {
		atPublisher += pl.Dropped
	}
	t.Logf("%d published = %d read + %d dropped by the node + %d dropped by the publisher's link", published,
		len(seqs), l.Dropped, atPublisher)
	if uint64(published) != uint64(len(seqs))+l.Dropped+atPublisher {
		t.Errorf("%d published, but %d read + %d dropped by the node + %d dropped by the publisher's link = %d",
			published, len(seqs), l.Dropped, atPublisher, uint64(len(seqs))+l.Dropped+atPublisher)
	}
}

// --- helpers ---

// startClientNode starts a client process in the test linked to server,
// waits until the server's registry has arrived, and stops it at the end.
func startClientNode(t *testing.T, name, server string) *node.Node {
	t.Helper()
	xc := node.Client("", server)
	xc.Retry = 200 * time.Millisecond
	n, err := node.Start(context.Background(), node.Config{Name: name, Exchanges: []exchange.Config{xc}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	if err := n.WaitSynced(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return n
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// caller is a client calling math.multiply at a steady pace.
type caller struct {
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
	ok       int
	failed   []string
}

func callLoop(t *testing.T, n *node.Node, every time.Duration) *caller {
	c := &caller{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v, err := service.CallFor[int](ctx, n.Runtime(), service.Name("math"), "multiply", 6, 7)
			cancel()
			if err != nil || v != 42 {
				c.failed = append(c.failed, fmt.Sprintf("%d, %v", v, err))
			} else {
				c.ok++
			}
		}
	}()
	t.Cleanup(func() { c.stop() })
	return c
}

// stop ends the calls and returns how many were answered and the failures.
func (c *caller) stop() (ok int, failed []string) {
	c.stopOnce.Do(func() { close(c.quit) })
	<-c.done
	return c.ok, c.failed
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeAll(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntilClosed reads until the node closes the connection, or d passes.
func readUntilClosed(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("the node did not close the connection within %v", d)
	}
	return nil // EOF or reset
}

// readFrame reads one frame: its kind, and the whole frame.
func readFrame(r *bufio.Reader) (connection.FrameKind, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 || n > 1<<24 {
		return 0, nil, fmt.Errorf("bad frame length %d", n)
	}
	frame := binary.AppendUvarint(nil, n)
	hdr := len(frame)
	frame = append(frame, make([]byte, n)...)
	if _, err := io.ReadFull(r, frame[hdr:]); err != nil {
		return 0, nil, err
	}
	return connection.FrameKind(frame[hdr]), frame, nil
}

// readUntilSynced reads the node's hello and its link-up dump, up to the
// synced frame, after this side sent a good hello; and on, until the node
// has announced services of each of names.
func readUntilSynced(t *testing.T, c net.Conn, names ...string) *bufio.Reader {
	t.Helper()
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	synced := false
	for !synced || len(want) > 0 {
		kind, frame, err := readFrame(r)
		if err != nil {
			t.Fatalf("reading the node's link-up dump (synced %v, still to see %v): %v", synced, want, err)
		}
		switch kind {
		case connection.FrameSynced:
			synced = true
		case connection.FrameAnnounce:
			_, n := binary.Uvarint(frame)
			if ch, err := connection.DecodeAnnounce(frame[n+1:]); err == nil && ch.Kind == registry.Available {
				delete(want, ch.Binding.Name)
			}
		}
	}
	return r
}

// captureClientHello returns the first bytes a TLS client sends.
func captureClientHello(t *testing.T) []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "netsvc.test", InsecureSkipVerify: true}).Handshake()
	buf := make([]byte, 4096)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.Read(buf)
	if err != nil || n < 50 || buf[0] != 0x16 {
		t.Fatalf("no TLS ClientHello captured: %d bytes, %v", n, err)
	}
	return buf[:n]
}

// links returns a node's links from its console.
func links(t *testing.T, con string) []exchange.LinkStatus {
	t.Helper()
	var c console.Connections
	getJSON(t, "http://"+con+"/api/connections", &c)
	return c.Links
}

// linkCount checks that the console lists n links.
func linkCount(t *testing.T, con string, n int) error {
	if ls := links(t, con); len(ls) != n {
		return fmt.Errorf("the node lists %d links, want %d", len(ls), n)
	}
	return nil
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// metric sums the samples of a metric on the console's /metrics whose
// labels contain match.
func metric(t *testing.T, con, name, match string) int64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + con + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) || !strings.Contains(series, match) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		t.Fatalf("/metrics has no %s{%s}", name, match)
	}
	return int64(sum)
}

// vmRSS returns a process's resident set size, from /proc.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to read the node's memory from: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
