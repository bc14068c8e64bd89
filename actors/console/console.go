package console

// The console's server: its configuration, the handler chain (token,
// loopback, cross-origin checks) and JSON answers.

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// DefaultAddr is where a console listens when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:8080"

// DefaultPingInterval is how often an idle event stream gets a comment,
// so proxies and browsers keep it open.
const DefaultPingInterval = 15 * time.Second

// DefaultGatewayMaxInFlight is how many gateway calls run at once when
// Config.GatewayMaxInFlight is zero.
const DefaultGatewayMaxInFlight = 8

// Timeouts of the HTTP server (variables for the tests). Event streams
// and gateway calls move their write deadlines as they go.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Node is what a console shows: a node (package actors/node) is one.
// The console reads it; it changes nothing but what a gateway call does.
type Node interface {
	Runtime() *service.Runtime
	Exchanges() []*exchange.Exchange
	Links() []exchange.LinkStatus
	Addr() string
	Budget() *connection.Budget
}

// Config configures a console.
type Config struct {
	// Addr is the HOST:PORT to listen on; DefaultAddr when empty. Port 0
	// picks a free port (see Console.Addr). An address other than
	// loopback needs a Token.
	Addr string
	// Token, when set, is required on every request: as the header
	// "Authorization: Bearer TOKEN", the console's cookie, or the query
	// parameter "token" (which the page trades for the cookie at once).
	Token string
	// Node is the node the console shows. Required.
	Node Node
	// Members returns the cluster members for /api/members and the
	// metrics; the result must marshal to JSON (a slice, usually). It is
	// called on each request and must not block for long. Nil means no
	// cluster: the members are [].
	Members func() any
	// NodeInfo returns facts about the node for /api/node beyond what the
	// console knows itself (gossip address, version, flags...). Its keys
	// override the console's own. It may be nil.
	NodeInfo func() map[string]any
	// Logger receives the console's logs; nil is quiet.
	Logger *slog.Logger
	// PingInterval is how often an idle event stream gets a comment;
	// DefaultPingInterval when zero.
	PingInterval time.Duration
	// GatewayMaxBody is the largest gateway request body, in bytes; a
	// larger one is answered 413 (payload too large) unread. Zero means
	// the runtime's MaxPayload. A call costs a small multiple of its
	// body in memory while it runs.
	GatewayMaxBody int64
	// GatewayMaxInFlight is how many gateway calls may run at once;
	// DefaultGatewayMaxInFlight when zero. Past it a call is answered
	// 503 at once, with a Retry-After header, never queued. With
	// GatewayMaxBody it bounds the gateway's memory.
	GatewayMaxInFlight int
	// Alive and Ready answer GET /healthz and /readyz: nil is 200, an
	// error 503 with its text. Nil funcs answer 200. Both answer
	// without the token and say nothing else, so a kubelet can probe
	// them; a node (package actors/node) fills them in.
	Alive, Ready func() error
	// TLS, when set, makes the console serve HTTPS with it: for a
	// console bound beyond loopback, where its token (and what it shows)
	// would otherwise cross the network in clear.
	TLS *tls.Config
	// GatewayCallsLocalOnly lets the gateway call services whose
	// audience is "", which are visible inside their own process only:
	// by default it answers 404 for them, as for a name it does not
	// know, because an HTTP client is not inside the process. Audience
	// is visibility, not access control: set it only when whoever can
	// reach the console may call those services.
	GatewayCallsLocalOnly bool
}

// Console is a running console.
type Console struct {
	cfg Config
	// memberClient asks the members' consoles for the cluster view.
	memberClient *http.Client
	log          *slog.Logger
	srv          *http.Server
	ln           net.Listener
	addr         string
	hub          *hub
	metrics      http.Handler
	started      time.Time

	guard    *authGuard                      // token guessing, per host
	inFlight chan struct{}                   // a slot per gateway call running
	rejected [numRejectReasons]atomic.Uint64 // gateway requests refused, by reason

	done     chan struct{} // closed by Stop: event streams end
	stopOnce sync.Once
	served   chan struct{} // closed when Serve returns
}

// Start listens on cfg.Addr and serves the console until Stop.
func Start(cfg Config) (*Console, error) {
	if cfg.Node == nil {
		return nil, errors.New("console: no node to show")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.GatewayMaxInFlight <= 0 {
		cfg.GatewayMaxInFlight = DefaultGatewayMaxInFlight
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "console")
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("console: address %q: want HOST:PORT", cfg.Addr)
	}
	if cfg.Token == "" && !loopbackHost(host) {
		return nil, fmt.Errorf("console: %s is reachable from other hosts: set a token, or listen on 127.0.0.1", cfg.Addr)
	}
	if cfg.Node.Runtime().Kernel().Closed() {
		return nil, errors.New("console: the node is stopped")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && cfg.Token == "" && !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("console: %s listens on %s, which is not loopback: set a token", cfg.Addr, ta.IP)
	}
	addr := ln.Addr().String()
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	memberClient := &http.Client{Timeout: clusterFetchTimeout}
	if cfg.TLS != nil {
		// Members' consoles are verified against the roots of this one's
		// configuration (the system's when it names none).
		memberClient.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cfg.TLS.RootCAs, MinVersion: tls.VersionTLS12}}
	}
	c := &Console{cfg: cfg, log: log, memberClient: memberClient, ln: ln, addr: addr, hub: newHub(),
		started: time.Now(), done: make(chan struct{}), served: make(chan struct{}),
		inFlight: make(chan struct{}, cfg.GatewayMaxInFlight), guard: newAuthGuard(log)}
	if err := c.watchLinks(); err != nil {
		ln.Close()
		return nil, err
	}
	c.metrics = c.metricsHandler()
	c.srv = &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(c.served)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("console stopped serving", "error", err)
		}
	}()
	log.Info("console started", "addr", c.addr, "token", cfg.Token != "")
	return c, nil
}

// Addr returns the address the console listens on, with the real port.
func (c *Console) Addr() string { return c.addr }

// URL returns the address of the web page, "http://HOST:PORT/" (https
// with Config.TLS).
func (c *Console) URL() string {
	if c.cfg.TLS != nil {
		return "https://" + c.addr + "/"
	}
	return "http://" + c.addr + "/"
}

// Stop ends the event streams and stops the server, waiting for
// requests in flight until ctx ends. It is safe to call more than once.
func (c *Console) Stop(ctx context.Context) error {
	var err error
	c.stopOnce.Do(func() {
		close(c.done)
		c.hub.close()
		err = c.srv.Shutdown(ctx)
		if err != nil {
			c.srv.Close()
		}
		select {
		case <-c.served:
		case <-ctx.Done():
		}
		c.log.Info("console stopped")
	})
	return err
}

// Publish sends an event to every open event stream (GET /api/events)
// as "event: NAME" with data as JSON, for changes the console cannot
// see itself, such as cluster members ("member"). It never blocks: a
// stream too slow to keep up is closed and its page reconnects.
func (c *Console) Publish(event string, data any) {
	c.hub.publish(event, data)
}

// handler is the console's mux behind its guards.
func (c *Console) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/node", c.get(c.apiNode))
	mux.HandleFunc("/api/tree", c.get(c.apiTree))
	mux.HandleFunc("/api/services", c.get(c.apiServices))
	mux.HandleFunc("/api/connections", c.get(c.apiConnections))
	mux.HandleFunc("/api/members", c.get(c.apiMembers))
	mux.HandleFunc("/api/cluster", c.get(c.apiCluster))
	mux.HandleFunc("/api/subscriptions", c.get(c.apiSubscriptions))
	mux.HandleFunc("/api/events", c.events)
	mux.HandleFunc("/rpc/", c.gateway)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if !allowGet(w, r) {
			return
		}
		c.metrics.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", c.static)
	var h http.Handler = mux
	h = c.authorize(h)
	if c.cfg.Token == "" {
		h = loopbackOnly(h)
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin "+r.Method+" refused: call the gateway from the console's own page, or without a browser")
	}))
	h = cop.Handler(h)
	// The probes answer before the guards: a kubelet has no token, and
	// they tell nothing but up or not.
	outer := http.NewServeMux()
	outer.Handle("/", h)
	outer.HandleFunc("/healthz", probe(c.cfg.Alive))
	outer.HandleFunc("/readyz", probe(c.cfg.Ready))
	return c.recoverPanics(securityHeaders(outer))
}

// probe answers a health probe: 200 "ok" when check passes (or is nil),
// else 503 with the reason, as plain text.
func probe(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowGet(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}
}

// get serves a JSON answer to GET (and HEAD).
func (c *Console) get(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowGet(w, r) {
			return
		}
		v, err := fn(r)
		if err != nil {
			c.log.Warn("console request failed", "path", r.URL.Path, "error", err)
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: method not allowed, use GET", r.Method, r.URL.Path))
	return false
}

// authorize checks the token, when there is one. Wrong tokens are
// counted per host, and a host that sent too many waits (see authGuard).
func (c *Console) authorize(next http.Handler) http.Handler {
	if c.cfg.Token == "" {
		return next
	}
	want := []byte(c.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := c.guard.throttled(r.RemoteAddr); ok {
			secs := retryAfter(wait)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests,
				fmt.Sprintf("too many wrong tokens from your address: try again in %d s", secs))
			return
		}
		fromURL := r.URL.Query().Get("token")
		got := fromURL
		if ck, err := r.Cookie(tokenCookie); err == nil && got == "" {
			got = ck.Value
		}
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, tok, ok := strings.Cut(auth, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				got = strings.TrimSpace(tok)
			}
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="netsvc console"`)
			msg := "this console needs a token: send Authorization: Bearer TOKEN, or open the page with ?token=TOKEN once (it moves to a cookie)"
			if got != "" {
				msg = "wrong token"
				c.guard.failed(r.RemoteAddr)
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		if fromURL != "" && got == fromURL && r.Method == http.MethodGet && (r.URL.Path == "/" || r.URL.Path == "/index.html") {
			// The page opened with ?token=: the token moves to a cookie
			// the page's requests carry, and leaves the URL (history,
			// logs, Referer) at once.
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: got, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenCookie carries the console token for the page's own requests.
const tokenCookie = "netsvc_console_token"

// loopbackOnly refuses requests that name another host than loopback: a
// console without a token must not be reachable through a DNS name that
// a web page re-pointed at 127.0.0.1 (DNS rebinding).
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !loopbackHost(strings.Trim(host, "[]")) {
			writeError(w, http.StatusMisdirectedRequest,
				fmt.Sprintf("host %q is not loopback: a console without a token answers only to 127.0.0.1, [::1] and localhost", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders keeps the page to its own resources.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// recoverPanics answers a panicking handler with a JSON error (no stack
// trace to the client) and logs it.
func (c *Console) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				c.log.Error("console handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				writeError(w, http.StatusInternalServerError, "internal error in the console; see the node's log")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (no port) is a loopback IP or
// "localhost".
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errorBody is the JSON of every error the console answers with.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := registry.EncodeJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = registry.EncodeJSON(errorBody{Error: "cannot encode the answer as JSON: " + err.Error(), Status: status})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
	io.WriteString(w, "\n")
}
