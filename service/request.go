package service

// Exported methods and the requests they serve: decoding arguments,
// answering now or later (rule 15).

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Request is the request a handler is serving. A handler whose first
// parameter is a context.Context receives the Request as that context
// (RequestOf gets it back); one whose first parameter is a *Request gets
// it directly. It is valid only until the handler returns: to answer
// later, keep what Delay returns.
//
// As a context it has the caller's deadline (the time the request had
// left when it was sent, counted from its arrival here) and is done when
// that passes or the caller gives up or cancels (rules 17 and 31). Pass
// it to the calls the handler makes: they inherit the deadline, and a
// cycle of synchronous calls ends when its outermost caller gives up.
type Request struct {
	agent   *Agent
	env     *registry.Envelope
	delayed bool
	// done is made by the first Done or Err, from any goroutine: a
	// context may be shared by the handler's goroutines.
	done atomic.Pointer[requestDone]
}

// requestDone is what a Request needs once a handler watches its
// context: a channel closed by the deadline's timer or a cancel from
// the caller. It is dropped when the handler returns, so a late timer
// or cancel finds nothing of the next request.
type requestDone struct {
	mu      sync.Mutex
	ch      chan struct{}
	err     error
	timer   *time.Timer
	unwatch func()
}

func (d *requestDone) end(err error) {
	d.mu.Lock()
	d.endLocked(err)
	d.mu.Unlock()
}

func (d *requestDone) endLocked(err error) {
	if d.err == nil {
		d.err = err
		close(d.ch)
	}
}

// watch sets up r.done: the deadline's timer and the caller's cancel.
func (r *Request) watch() *requestDone {
	if d := r.done.Load(); d != nil {
		return d
	}
	d := &requestDone{ch: make(chan struct{})}
	if !r.done.CompareAndSwap(nil, d) {
		return r.done.Load() // another goroutine made it first
	}
	d.mu.Lock() // until the timer and the watch are set, for release
	defer d.mu.Unlock()
	if r.env == nil {
		d.endLocked(context.Canceled) // used after its handler returned
		return d
	}
	if dl := r.env.Deadline; dl != 0 {
		left := time.Until(time.Unix(0, dl))
		if left <= 0 {
			d.endLocked(context.DeadlineExceeded)
			return d
		}
		d.timer = time.AfterFunc(left, func() { d.end(context.DeadlineExceeded) })
	}
	d.unwatch = r.agent.k.WatchCancel(r.env, func() { go d.end(context.Canceled) })
	return d
}

// release stops watching once the handler has returned.
func (r *Request) release() {
	if d := r.done.Load(); d != nil {
		d.mu.Lock()
		timer, unwatch := d.timer, d.unwatch
		d.mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
		if unwatch != nil {
			unwatch()
		}
	}
}

var _ context.Context = (*Request)(nil)

// RequestOf returns the Request behind a handler's context, or nil.
func RequestOf(ctx context.Context) *Request {
	r, _ := ctx.(*Request)
	return r
}

// Method returns the method being called.
func (r *Request) Method() string { return r.env.Subject }

// Sender returns the caller's address.
func (r *Request) Sender() Address { return r.env.From }

// Conversation returns the request's conversation id.
func (r *Request) Conversation() uint64 { return r.env.Conv }

// Agent returns the service serving the request.
func (r *Request) Agent() *Agent { return r.agent }

// Delay turns off the automatic answer: the handler's return values are
// ignored and the service answers later, from any of its handlers, with
// the returned Delayed (or Agent.Reply with the conversation id).
//
// A service holds at most Config.MaxDelayed requests delayed and not
// answered (see also Config.MaxDelayedTotal): at that bound every new
// request to it fails with CodeOverloaded before its handler runs, so
// answers must then come from other handlers (timers, reports, messages,
// reply callbacks).
func (r *Request) Delay() Delayed {
	r.delayed = true
	r.agent.addDelayed(r.env)
	return Delayed{agent: r.agent, conv: r.env.Conv}
}

// Deadline returns when the caller gives up on the request.
func (r *Request) Deadline() (time.Time, bool) {
	if r.env == nil || r.env.Deadline == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, r.env.Deadline), true
}

// Done is closed when the deadline passes or the caller gives up or
// cancels the request.
func (r *Request) Done() <-chan struct{} { return r.watch().ch }

// Err returns context.DeadlineExceeded or context.Canceled once Done is
// closed, nil before.
func (r *Request) Err() error {
	d := r.watch()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Value returns nil for every key.
func (r *Request) Value(any) any { return nil }

// Delayed is a request whose answer comes later (rule 15).
type Delayed struct {
	agent *Agent
	conv  uint64
}

// Conversation returns the request's conversation id.
func (d Delayed) Conversation() uint64 { return d.conv }

// Reply answers the request with a value.
func (d Delayed) Reply(v any) error { return d.agent.Reply(d.conv, v) }

// Fail answers the request with a failure.
func (d Delayed) Fail(f *Failure) error { return d.agent.FailRequest(d.conv, f) }

// Reply answers a delayed request by conversation id.
func (a *Agent) Reply(conv uint64, v any) error {
	to, ok := a.takeDelayed(conv)
	if !ok {
		return fmt.Errorf("no delayed request with conversation %d", conv)
	}
	e := &registry.Envelope{Kind: registry.KindRequest, To: a.ref.Addr(), From: to.addr, Conv: conv, Via: to.via}
	a.answer(e, v)
	return nil
}

// FailRequest answers a delayed request with a failure. Like a failure a
// handler returns, its origin defaults to the service's name; a nil
// failure answers with CodeResponseAborted.
func (a *Agent) FailRequest(conv uint64, f *Failure) error {
	to, ok := a.takeDelayed(conv)
	if !ok {
		return fmt.Errorf("no delayed request with conversation %d", conv)
	}
	if f == nil {
		f = &Failure{Code: CodeResponseAborted, Details: "the service aborted the response"}
	}
	a.fail(&registry.Envelope{To: a.ref.Addr(), From: to.addr, Conv: conv, Via: to.via}, a.handlerFailure(f))
	return nil
}

// Abandon forgets a delayed request without answering; the caller's
// deadline ends it.
func (a *Agent) Abandon(conv uint64) { a.takeDelayed(conv) }

// delayedCaller is who waits for a delayed answer, and the link the
// request came over, the way the answer goes back.
type delayedCaller struct {
	addr Address
	via  registry.Link
}

// addDelayed records a delayed request's caller, counted against the
// service's and the process's bounds.
func (a *Agent) addDelayed(e *registry.Envelope) {
	if _, again := a.delayed[e.Conv]; !again {
		a.k.Delaying(a.ref, 1)
	}
	a.delayed[e.Conv] = delayedCaller{e.From, e.Via}
}

// takeDelayed forgets a delayed request, giving back its place.
func (a *Agent) takeDelayed(conv uint64) (delayedCaller, bool) {
	to, ok := a.delayed[conv]
	if ok {
		delete(a.delayed, conv)
		a.k.Delaying(a.ref, -1)
	}
	return to, ok
}

// releaseDelayed gives back the places of every delayed request of a
// stopped service; their callers are failed by the withdrawal.
func (a *Agent) releaseDelayed() {
	a.k.Delaying(a.ref, -int64(len(a.delayed)))
	clear(a.delayed)
}

// delayedFull refuses a request while the service holds as many delayed
// requests as Config.MaxDelayed allows, or holds some while the process
// is at Config.MaxDelayedTotal: its handler could delay one more
// (rule 36). A service holding none goes on serving at the process's
// bound, so services that never delay are not stopped by those that do.
func (a *Agent) delayedFull(e *registry.Envelope) *Failure {
	n := len(a.delayed)
	if a.k.AdmitDelayed(a.ref, n) {
		return nil
	}
	total := a.k.DelayedTotal()
	reason := fmt.Sprintf("%s holds %d delayed requests, its limit (MaxDelayed)", registry.DisplayName(a.ref.Name()), n)
	if n < a.cfg.MaxDelayed {
		reason = fmt.Sprintf("this process holds %d delayed requests, its limit (MaxDelayedTotal)", total)
	}
	if count, ok := a.delayedLog.hit(time.Now(), time.Minute); ok {
		a.log.Warn("refusing requests: too many delayed requests outstanding", "reason", reason,
			"method", e.Subject, "caller", e.From.String(), "refused", count)
	}
	return registry.RuntimeFailuref(CodeOverloaded, "%s", reason)
}

// method is an exported method, with reusable storage for its arguments:
// handlers run one at a time, so decoding needs no allocation per call.
type method struct {
	name     string
	fn       reflect.Value
	firstReq int // 1 when the first parameter takes the Request
	params   []reflect.Type
	store    []reflect.Value // pointers to argument storage
	ptrs     []any           // the same pointers as interfaces
	in       []reflect.Value
	raw      reflect.Type // set when the only parameter is Raw or []byte
	results  int
	lastErr  bool // the last result is an error
	variadic bool // the last parameter is ...T: it takes the arguments left
	stats    *registry.MethodStats
	err      error
}

var (
	ctxType     = reflect.TypeOf((*context.Context)(nil)).Elem()
	requestType = reflect.TypeOf((*Request)(nil))
	errorType   = reflect.TypeOf((*error)(nil)).Elem()
	rawType     = reflect.TypeOf(Raw{})
	bytesType   = reflect.TypeOf([]byte(nil))
)

// Export makes fn callable as method name. fn is a function taking
// plain Go values the codec can decode, optionally preceded by a
// context.Context or *Request, and returning a value, an error, both, or
// nothing:
//
//	a.Export("multiply", func(x, y int) int { return x * y })
//	a.Export("lookup", func(ctx context.Context, key string) (Item, error) { ... })
//	a.Export("sum", func(xs ...float64) float64 { ... })
//
// A variadic fn takes the arguments past its fixed ones as its last
// parameter (none gives an empty slice). A returned *Failure reaches the caller as is; any other error as a
// CodeHandlerError failure. A bad signature makes Start fail.
func (a *Agent) Export(name string, fn any) {
	m := newMethod(name, fn, &a.req)
	m.stats = a.ref.Method(name)
	a.methods[name] = m
}

func newMethod(name string, fn any, req *Request) *method {
	m := &method{name: name}
	v := reflect.ValueOf(fn)
	t := v.Type()
	if v.Kind() != reflect.Func || v.IsNil() {
		m.err = fmt.Errorf("export %q: want a function, got %T", name, fn)
		return m
	}
	m.variadic = t.IsVariadic()
	m.fn = v
	m.in = make([]reflect.Value, t.NumIn())
	first := 0
	if t.NumIn() > 0 && (t.In(0) == ctxType || t.In(0) == requestType) {
		m.firstReq, first = 1, 1
		m.in[0] = reflect.ValueOf(req)
	}
	for i := first; i < t.NumIn(); i++ {
		pt := t.In(i)
		if pt == ctxType || pt == requestType {
			m.err = fmt.Errorf("export %q: a context or *Request may only be the first parameter", name)
			return m
		}
		m.params = append(m.params, pt)
		p := reflect.New(pt)
		m.store = append(m.store, p)
		m.ptrs = append(m.ptrs, p.Interface())
		m.in[i] = p.Elem()
	}
	if len(m.params) == 1 && !m.variadic && (m.params[0] == rawType || m.params[0] == bytesType) {
		m.raw = m.params[0]
	}
	m.results = t.NumOut()
	switch {
	case m.results > 2:
		m.err = fmt.Errorf("export %q: return at most a value and an error", name)
	case m.results == 2 && t.Out(1) != errorType:
		m.err = fmt.Errorf("export %q: the second result must be an error", name)
	case m.results >= 1 && t.Out(m.results-1) == errorType:
		m.lastErr = true
	}
	return m
}

// decode fills the method's argument storage from a request.
func (m *method) decode(e *registry.Envelope) *Failure {
	if e.ContentType != ContentCBOR && e.ContentType != "" {
		switch m.raw {
		case rawType:
			m.store[0].Elem().Set(reflect.ValueOf(Raw{ContentType: e.ContentType, Data: e.Data}))
			return nil
		case bytesType:
			m.store[0].Elem().SetBytes(e.Data)
			return nil
		}
		return registry.RuntimeFailuref(CodeBadArguments, "%s takes encoded arguments, got %s", m.name, e.ContentType)
	}
	n, rest, err := registry.ReadArrayHeader(e.Data)
	if err != nil {
		return registry.RuntimeFailuref(CodeBadArguments, "%s: %v", m.name, err)
	}
	fixed := len(m.params)
	if m.variadic {
		fixed--
		if n < fixed {
			return registry.RuntimeFailuref(CodeBadArguments, "%s: expected at least %d arguments, received %d", m.name, fixed, n)
		}
	} else if n != fixed {
		return registry.RuntimeFailuref(CodeBadArguments, "%s: expected %d arguments, received %d", m.name, fixed, n)
	}
	for i, p := range m.store[:fixed] {
		// Zero first: a reused slice or map must not leak into the next call.
		p.Elem().SetZero()
		if rest, err = registry.DecodeNext(rest, m.ptrs[i]); err != nil {
			return registry.RuntimeFailuref(CodeBadArguments, "%s: argument %d: %v", m.name, i+1, err)
		}
	}
	if m.variadic {
		// A fresh slice per call: the handler may keep it.
		extra := reflect.MakeSlice(m.params[fixed], n-fixed, n-fixed)
		for i := range n - fixed {
			if rest, err = registry.DecodeNext(rest, extra.Index(i).Addr().Interface()); err != nil {
				return registry.RuntimeFailuref(CodeBadArguments, "%s: argument %d: %v", m.name, fixed+i+1, err)
			}
		}
		m.store[fixed].Elem().Set(extra)
	}
	if len(rest) != 0 {
		return registry.RuntimeFailuref(CodeBadArguments, "%s: %d bytes after the arguments", m.name, len(rest))
	}
	return nil
}

// serve runs the handler for a request and answers it.
func (a *Agent) serve(e *registry.Envelope) {
	m := a.methods[e.Subject]
	if m == nil && e.Subject == inPlaceMethod {
		a.answer(e, nil) // after the subscriptions sent before it (OnInPlace)
		return
	}
	if m == nil {
		a.fail(e, registry.RuntimeFailuref(CodeNoSuchMethod, "%s has no method %q", registry.DisplayName(a.ref.Name()), e.Subject))
		return
	}
	start := time.Now()
	if f := a.delayedFull(e); f != nil {
		e.NotRun = true // refused before its handler: the caller may try elsewhere
		a.failCall(m, e, f, start)
		return
	}
	if e.Deadline != 0 && start.UnixNano() >= e.Deadline {
		e.NotRun = true
		a.failCall(m, e, registry.RuntimeFailuref(CodeTimedOut, "the caller's deadline passed before %s ran", e.Subject), start)
		return
	}
	if a.k.Cancelled(e) {
		m.stats.Observe(0, CodeCancelled)
		return // its caller gave up on it while it waited: it waits for nothing
	}
	if f := m.decode(e); f != nil {
		a.failCall(m, e, f, start)
		return
	}
	a.req = Request{agent: a, env: e}
	a.ref.Serving(&m.name, e.Deadline) // for the slow-handler watch and the console
	out, panicked := a.invoke(m)
	a.ref.Serving(nil, 0)
	a.req.release()
	delayed := a.req.delayed
	a.req = Request{}
	if panicked != nil {
		if delayed {
			a.takeDelayed(e.Conv)
		}
		a.failCall(m, e, panicked, start)
		return
	}
	if delayed {
		m.stats.Observe(time.Since(start), 0) // the handler's time; the answer comes later
		return
	}
	var result any
	if m.lastErr {
		if errv := out[m.results-1]; !errv.IsNil() {
			a.failCall(m, e, a.handlerFailure(errv.Interface().(error)), start)
			return
		}
		if m.results == 2 {
			result = out[0].Interface()
		}
	} else if m.results == 1 {
		result = out[0].Interface()
	}
	m.stats.Observe(time.Since(start), 0)
	a.answer(e, result)
}

// failCall counts a failed call of m and answers it with f.
func (a *Agent) failCall(m *method, e *registry.Envelope, f *Failure, start time.Time) {
	m.stats.Observe(time.Since(start), f.Code)
	a.fail(e, f)
}

func (a *Agent) invoke(m *method) (out []reflect.Value, f *Failure) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("handler panicked", "method", m.name, "panic", r, "stack", string(debug.Stack()))
			a.handlerPanicked()
			f = &Failure{Code: CodeHandlerError, Description: CodeHandlerError.String(),
				Origin: registry.DisplayName(a.ref.Name()), Details: fmt.Sprintf("%s panicked: %v", m.name, r)}
		}
	}()
	if m.variadic {
		return m.fn.CallSlice(m.in), nil
	}
	return m.fn.Call(m.in), nil
}

func (a *Agent) handlerFailure(err error) *Failure {
	if f, ok := err.(*Failure); ok {
		if f.Origin == "" {
			c := *f
			c.Origin = registry.DisplayName(a.ref.Name())
			if c.Description == "" {
				c.Description = c.Code.String()
			}
			return &c
		}
		return f
	}
	return &Failure{Code: CodeHandlerError, Description: CodeHandlerError.String(), Origin: registry.DisplayName(a.ref.Name()), Details: err.Error()}
}

// answer turns the request envelope into its response and sends it back.
func (a *Agent) answer(e *registry.Envelope, v any) {
	p, err := Encode(v)
	if err != nil {
		a.fail(e, registry.RuntimeFailuref(CodeResponseEncoding, "%v", err))
		return
	}
	if len(p.Data) > a.cfg.MaxPayload {
		a.fail(e, registry.RuntimeFailuref(CodePayloadTooLarge, "result is %d bytes, the limit is %d", len(p.Data), a.cfg.MaxPayload))
		return
	}
	e.Kind, e.To, e.From = registry.KindResponse, e.From, e.To
	e.Subject, e.ContentType, e.Data = "", p.ContentType, p.Data
	a.k.Route(e)
}

func (a *Agent) fail(e *registry.Envelope, f *Failure) {
	a.k.CountFailure(f.Code)
	e.Kind, e.To, e.From = registry.KindFailure, e.From, e.To
	e.Subject, e.ContentType, e.Data = "", ContentCBOR, registry.EncodeFailure(f)
	a.k.Route(e)
}
