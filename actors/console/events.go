package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// GET /api/events: a server-sent event stream per client.
//
//	event: registry   data: {"kind": "available|withdrawn|joined|left", "binding": {...}, "group": "..."}
//	event: link       data: {"state": "up|synced|down", "reason": "...", "link": {...}}
//	: ping            (a comment every PingInterval)
//
// Each stream has a registry watch of its own, so it starts with an
// "available" event for every binding present, then the changes as they
// happen (rule 12). Link events come from one watch per exchange
// that the console shares among its streams. A stream that cannot keep
// up is closed; the browser's EventSource reconnects and starts afresh.

// streamBuffer is how many events may wait for a slow client.
const streamBuffer = 1024

// sseEvent is one event, its data already JSON.
type sseEvent struct {
	name string
	data []byte
}

// LinkEventInfo is the data of a "link" event.
type LinkEventInfo struct {
	// State is "up" (handshake done), "synced" (the peer's bindings
	// arrived) or "down".
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Link   LinkInfo  `json:"link"`
	Time   time.Time `json:"time"`
}

// LinkInfo describes the link of a link event.
type LinkInfo struct {
	ID          string            `json:"id"`
	Group       string            `json:"group"`
	LocalRole   string            `json:"local_role"`
	PeerRole    string            `json:"peer_role"`
	PeerProcess service.ProcessID `json:"remote_process"`
	PeerNode    string            `json:"remote_node"`
	PeerAddress string            `json:"remote_address"`
}

// hub fans events the console shares (links, published ones) out to the
// open streams. Broadcasting never blocks.
type hub struct {
	mu     sync.Mutex
	subs   map[*stream]struct{}
	closed bool
}

// stream is one client's queue.
type stream struct {
	ch       chan sseEvent
	overflow chan struct{} // closed when an event could not be queued
	once     sync.Once
}

func newHub() *hub { return &hub{subs: map[*stream]struct{}{}} }

func newStream() *stream {
	return &stream{ch: make(chan sseEvent, streamBuffer), overflow: make(chan struct{})}
}

// offer queues an event without blocking; a full queue marks the stream
// as overflowed.
func (s *stream) offer(ev sseEvent) {
	select {
	case s.ch <- ev:
	default:
		s.once.Do(func() { close(s.overflow) })
	}
}

func (h *hub) subscribe(s *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.subs[s] = struct{}{}
	return true
}

func (h *hub) unsubscribe(s *stream) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// streams counts the open streams.
func (h *hub) streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

func (h *hub) broadcast(ev sseEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for s := range h.subs {
		s.offer(ev)
	}
}

func (h *hub) publish(name string, data any) {
	name = sseLine(name)
	b, err := registry.EncodeJSON(data)
	if err != nil {
		b, _ = registry.EncodeJSON(map[string]string{"error": err.Error()})
	}
	h.broadcast(sseEvent{name: name, data: b})
}

// watchLinks registers the console with every exchange for link events.
// An exchange cannot forget a watcher, so after Stop the hub drops them.
func (c *Console) watchLinks() error {
	for _, x := range c.cfg.Node.Exchanges() {
		registered := make(chan struct{})
		go func() {
			x.WatchLinks(func(ev exchange.LinkEvent) { c.hub.publish("link", linkEventInfo(ev)) })
			close(registered)
		}()
		select {
		case <-registered:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("console: the exchange of group %q does not answer", x.Group())
		}
	}
	return nil
}

// sseLine keeps a text to one line of the event stream.
func sseLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func linkEventInfo(ev exchange.LinkEvent) LinkEventInfo {
	state := "down"
	switch {
	case ev.Active && ev.Synced:
		state = "synced"
	case ev.Active:
		state = "up"
	}
	l := ev.Link
	return LinkEventInfo{State: state, Reason: ev.Reason, Link: LinkInfo{ID: l.ID, Group: l.ExchangeGroup,
		LocalRole: l.LocalRole.String(), PeerRole: l.PeerRole.String(), PeerProcess: l.PeerProcess,
		PeerNode: l.PeerNode, PeerAddress: l.PeerAddress}, Time: time.Now()}
}

// events serves GET /api/events.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	// A stream lives until the client goes: its write deadline moves
	// forward at each write (the server's WriteTimeout would end it).
	rc := http.NewResponseController(w)
	s := newStream()
	if !c.hub.subscribe(s) {
		writeError(w, http.StatusServiceUnavailable, "the console is stopping")
		return
	}
	defer c.hub.unsubscribe(s)
	ctx := r.Context()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stopWatch, err := c.cfg.Node.Runtime().Watch(wctx, service.AllServices, func(ev service.RegistryEvent) {
		if ev.Binding.Groups == nil {
			ev.Binding.Groups = []string{}
		}
		b, err := registry.EncodeJSON(ev)
		if err != nil {
			return
		}
		s.offer(sseEvent{name: "registry", data: b})
	})
	cancel()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot watch the registry: "+err.Error())
		return
	}
	defer stopWatch.Cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// write sends one chunk with a fresh write deadline, then flushes.
	write := func(text string) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			return false
		}
		if _, err := fmt.Fprint(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n: connected to " + sseLine(c.cfg.Node.Runtime().Node()) + "\n\n") {
		return
	}
	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case ev := <-s.ch:
			if !write("event: " + ev.name + "\ndata: " + string(ev.data) + "\n\n") {
				return
			}
		case <-ping.C:
			if !write(": ping\n\n") {
				return
			}
		case <-s.overflow:
			c.log.Warn("event stream too slow: closed; the page reconnects", "remote", r.RemoteAddr)
			return
		case <-ctx.Done():
			return
		case <-c.done:
			return
		}
	}
}
