package registry

// Requests to a process itself (service id 0) rather than to one of its
// services: a ping, and what the node hands in (its cluster members),
// answered at once on the goroutine that delivers them, so a client
// reaches them over its exchange link without a console.

import "sync"

// Methods every process answers at Address{Process: p} (ID 0).
const (
	// MethodPing answers nothing at once: the round trip to the process.
	MethodPing = "\x00ping"
	// MethodMembers answers the cluster members the process's node knows
	// (JSON-ready values), when the node has a cluster.
	MethodMembers = "\x00members"
)

type processMethods struct {
	mu sync.RWMutex
	m  map[string]func() (any, error)
}

// HandleProcess makes the process answer method (at service id 0) with
// what fn returns. fn runs on the goroutine delivering the request: it
// must be quick and never block.
func (rt *Kernel) HandleProcess(method string, fn func() (any, error)) {
	p := &rt.procMethods
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]func() (any, error){}
	}
	p.m[method] = fn
	p.mu.Unlock()
}

// answerProcess answers a request to the process itself.
func (rt *Kernel) answerProcess(e *Envelope) {
	rt.procMethods.mu.RLock()
	fn := rt.procMethods.m[e.Subject]
	rt.procMethods.mu.RUnlock()
	if fn == nil {
		rt.undeliverable(e, RuntimeFailuref(CodeNoSuchMethod, "process %s has no method %q", rt.pid, e.Subject), true)
		return
	}
	v, err := fn()
	if err != nil {
		rt.undeliverable(e, AsFailure(err), false)
		return
	}
	p, err := Encode(v)
	if err != nil {
		rt.undeliverable(e, RuntimeFailuref(CodeResponseEncoding, "%v", err), false)
		return
	}
	rt.reply(&Envelope{Kind: KindResponse, To: e.From, From: e.To, Conv: e.Conv, ContentType: p.ContentType, Data: p.Data, Via: e.Via})
}
