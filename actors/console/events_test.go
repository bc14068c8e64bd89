package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// sse is a client of GET /api/events.
type sse struct {
	events chan sseMsg
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ended
}

type sseMsg struct {
	name, data string // name "comment" for a comment line
}

// openEvents opens the event stream and reads it until cancel.
func openEvents(t testing.TB, url string, header ...string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, resp.Header)
	}
	s := &sse{events: make(chan sseMsg, 4096), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer tr.CloseIdleConnections()
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" || len(data) > 0 {
					s.events <- sseMsg{name: name, data: strings.Join(data, "\n")}
				}
				name, data = "", nil
			case strings.HasPrefix(line, ":"):
				s.events <- sseMsg{name: "comment", data: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "event: "):
				name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[len("data: "):])
			}
		}
	}()
	t.Cleanup(func() { s.close(t) })
	return s
}

// close ends the stream and waits for the reader.
func (s *sse) close(t testing.TB) {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Error("the event stream reader did not end")
	}
}

// next waits for an event named name whose data matches, skipping
// others; it fails the test after d.
func (s *sse) next(t testing.TB, d time.Duration, name string, match func(data string) bool) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended waiting for %s", name)
			}
			if ev.name == name && (match == nil || match(ev.data)) {
				return ev.data
			}
		case <-s.done:
			t.Fatalf("the stream ended waiting for %s", name)
		case <-timeout:
			t.Fatalf("no %s event within %v", name, d)
		}
	}
}

// all waits until events named name matched every one of matches, in
// any order; it fails the test after d.
func (s *sse) all(t testing.TB, d time.Duration, name string, matches ...func(data string) bool) {
	t.Helper()
	timeout := time.After(d)
	left := append([]func(string) bool(nil), matches...)
	for len(left) > 0 {
		select {
		case ev := <-s.events:
			if ev.name != name {
				continue
			}
			for i, m := range left {
				if m(ev.data) {
					left = append(left[:i], left[i+1:]...)
					break
				}
			}
		case <-s.done:
			t.Fatalf("the stream ended waiting for %d more %s events", len(left), name)
		case <-timeout:
			t.Fatalf("%d %s events missing after %v", len(left), name, d)
		}
	}
}

func registryEvent(t testing.TB, data string) service.RegistryEvent {
	t.Helper()
	var ev struct {
		Kind    string
		Binding service.Binding
		Group   string
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	kinds := map[string]service.EventKind{"available": service.Available, "withdrawn": service.Withdrawn, "joined": service.Joined, "left": service.Left}
	return service.RegistryEvent{Kind: kinds[ev.Kind], Binding: ev.Binding, Group: ev.Group}
}

func TestEvents(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv, PingInterval: 50 * time.Millisecond})
	s := openEvents(t, c.URL()+"api/events")
	is := func(kind, name string) func(string) bool {
		return func(data string) bool {
			ev := registryEvent(t, data)
			return ev.Kind.String() == kind && ev.Binding.Name == name
		}
	}
	// The snapshot first: what is there already, local and remote.
	s.all(t, 10*time.Second, "registry", is("available", "math"), is("available", "echo"), is("available", "hidden"))
	// Then the changes.
	ctx := context.Background()
	addr, err := p.srv.Runtime().Start(ctx, "late", service.SetupFunc(func(*service.Agent) error { return nil }), service.Groups("web"))
	if err != nil {
		t.Fatal(err)
	}
	s.all(t, 10*time.Second, "registry", func(data string) bool {
		ev := registryEvent(t, data)
		return ev.Kind == service.Available && ev.Binding.Address == addr && ev.Binding.Local && ev.Binding.Node == "srv"
	}, func(data string) bool {
		ev := registryEvent(t, data)
		return ev.Kind == service.Joined && ev.Binding.Name == "late" && ev.Group == "web"
	})
	s.next(t, 10*time.Second, "comment", func(data string) bool { return data == "ping" })
	c.Publish("member", map[string]string{"name": "n2", "state": "alive"})
	if data := s.next(t, 10*time.Second, "member", nil); data != `{"name":"n2","state":"alive"}` {
		t.Errorf("member event: %s", data)
	}
	// A link going down, and what it took with it.
	cliProc := p.cli.Runtime().ProcessID()
	p.stopCli()
	// The two come on their own paths, in either order.
	var down, withdrawn bool
	timeout := time.After(10 * time.Second)
	for !down || !withdrawn {
		select {
		case ev := <-s.events:
			switch {
			case ev.name == "link" && strings.Contains(ev.data, `"state":"down"`):
				var le LinkEventInfo
				if err := json.Unmarshal([]byte(ev.data), &le); err != nil || le.Link.PeerNode != "cli" || le.Link.PeerProcess != cliProc ||
					le.Reason == "" || le.Link.ID == "" || le.Time.IsZero() {
					t.Errorf("link down: %v %s", err, ev.data)
				}
				down = true
			case ev.name == "registry" && is("withdrawn", "echo")(ev.data):
				withdrawn = true
			}
		case <-timeout:
			t.Fatalf("after the client stopped: link down %v, echo withdrawn %v", down, withdrawn)
		}
	}
}

func TestLinkUpEvents(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	s := openEvents(t, c.URL()+"api/events")
	// A second client links: up, then synced.
	cli2 := startClient(t, p.srv.Addr(), "cli2")
	for _, state := range []string{"up", "synced"} {
		data := s.next(t, 10*time.Second, "link", func(data string) bool { return strings.Contains(data, `"state":"`+state+`"`) })
		var le LinkEventInfo
		if err := json.Unmarshal([]byte(data), &le); err != nil || le.Link.PeerNode != "cli2" || le.Link.PeerRole != "client" ||
			le.Link.LocalRole != "server" || le.Link.PeerProcess != cli2.Runtime().ProcessID() {
			t.Errorf("link %s: %v %s", state, err, data)
		}
	}
}

// goroutinesAtMost waits until no more than n goroutines run.
func goroutinesAtMost(t testing.TB, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if g := runtime.NumGoroutine(); g > n {
			return fmt.Errorf("%d goroutines, want at most %d", g, n)
		}
		return nil
	})
}

func TestEventStreamsLeaveNothingBehind(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	rt := p.srv.Runtime()
	actors := func() int { return len(rt.Kernel().Tree().Snapshot()) }
	watches := func() int { return len(rt.Kernel().Interests().Watches) }
	// Settle, then count.
	get(t, c.URL()+"api/node")
	client.CloseIdleConnections()
	baseActors, baseWatches := actors(), watches()
	baseGoroutines := runtime.NumGoroutine()

	var streams []*sse
	for range 3 {
		s := openEvents(t, c.URL()+"api/events")
		s.next(t, 10*time.Second, "registry", nil)
		streams = append(streams, s)
	}
	if n := c.hub.streams(); n != 3 {
		t.Errorf("%d streams open, want 3", n)
	}
	if got := watches(); got != baseWatches+3 {
		t.Errorf("%d registry watches with 3 streams, want %d", got, baseWatches+3)
	}
	for _, s := range streams {
		s.close(t)
	}
	// The client went: its watch, its watcher actor and its goroutines go.
	waitFor(t, 10*time.Second, func() error {
		if n := c.hub.streams(); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		if got := watches(); got != baseWatches {
			return fmt.Errorf("%d registry watches, want %d", got, baseWatches)
		}
		if got := actors(); got != baseActors {
			return fmt.Errorf("%d actors, want %d", got, baseActors)
		}
		return nil
	})
	goroutinesAtMost(t, baseGoroutines)

	// Stopping the console ends open streams.
	s := openEvents(t, c.URL()+"api/events")
	s.next(t, 10*time.Second, "registry", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("stop with an open stream: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still open after Stop")
	}
	waitFor(t, 10*time.Second, func() error {
		if got := watches(); got != baseWatches {
			return fmt.Errorf("%d registry watches after Stop, want %d", got, baseWatches)
		}
		return nil
	})
}

func TestSlowStreamIsClosed(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	s := newStream()
	c.hub.subscribe(s)
	defer c.hub.unsubscribe(s)
	for i := range streamBuffer + 1 {
		c.Publish("member", i)
	}
	select {
	case <-s.overflow:
	default:
		t.Fatal("a full stream is not marked as overflowed")
	}
}

// The server's write timeout ends ordinary requests, not event
// streams nor gateway calls that wait longer.
func TestLongRequestsOutliveServerTimeouts(t *testing.T) {
	saved := []time.Duration{readTimeout, writeTimeout}
	readTimeout, writeTimeout = 300*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { readTimeout, writeTimeout = saved[0], saved[1] })
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv, PingInterval: 50 * time.Millisecond})
	s := openEvents(t, c.URL()+"api/events")
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		s.next(t, 5*time.Second, "comment", func(data string) bool { return data == "ping" })
	}
	r := do(t, http.MethodPost, c.URL()+"rpc/never/wait?timeout=1200ms", "[]")
	var f FailureBody
	if err := json.Unmarshal(r.body, &f); err != nil || r.status != 504 || f.Code != service.CodeTimedOut {
		t.Errorf("a call longer than the server's timeouts: %s", r)
	}
}
