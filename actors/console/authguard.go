package console

// Guessing the console's token is slowed and counted per remote host.

import (
	"container/list"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Token guessing is counted, logged and slowed per remote host: each
// host may send authGuessBurst wrong tokens at once, then one per
// authGuessEvery; past that its requests are answered 429 with
// Retry-After, their tokens unchecked, until its budget refills. A
// request without a token is no guess and costs nothing.
//
// "Host" is the peer address of the connection: behind a reverse proxy
// every client is the proxy, and they share one budget. An IPv6 host is
// its /64, which one machine usually has whole.
const (
	authGuessBurst = 5
	authGuessEvery = time.Second
	authHostsMax   = 4096        // hosts remembered; the least recently seen go first
	authLogEvery   = time.Minute // at most a log line per host this often
)

// authGuard holds the guessing budgets of the hosts.
type authGuard struct {
	log      *slog.Logger
	now      func() time.Time // time.Now, but for tests
	failures atomic.Uint64    // wrong tokens, for /metrics

	mu    sync.Mutex
	hosts map[string]*list.Element // of *authHost
	lru   *list.List               // front: the most recently seen
}

// authHost is a host's budget and what its log lines left out.
type authHost struct {
	key        string
	lim        *rate.Limiter
	logged     time.Time // last log line
	suppressed int       // refusals since, not logged
}

func newAuthGuard(log *slog.Logger) *authGuard {
	return &authGuard{log: log, now: time.Now, hosts: map[string]*list.Element{}, lru: list.New()}
}

// hostKey is the budget a request's peer address spends.
func hostKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

// host returns the entry of key, making one (and forgetting the least
// recently seen host past authHostsMax) when create is set. Called
// with g.mu held.
func (g *authGuard) host(key string, create bool) *authHost {
	if e, ok := g.hosts[key]; ok {
		g.lru.MoveToFront(e)
		return e.Value.(*authHost)
	}
	if !create {
		return nil
	}
	if g.lru.Len() >= authHostsMax {
		old := g.lru.Back()
		g.lru.Remove(old)
		delete(g.hosts, old.Value.(*authHost).key)
	}
	h := &authHost{key: key, lim: rate.NewLimiter(rate.Every(authGuessEvery), authGuessBurst)}
	g.hosts[key] = g.lru.PushFront(h)
	return h
}

// throttled reports whether a request from remoteAddr must wait, and
// how long, before its token is even looked at.
func (g *authGuard) throttled(remoteAddr string) (time.Duration, bool) {
	key, now := hostKey(remoteAddr), g.now()
	g.mu.Lock()
	h := g.host(key, false)
	if h == nil {
		g.mu.Unlock()
		return 0, false
	}
	tokens := h.lim.TokensAt(now)
	if tokens >= 1 {
		g.mu.Unlock()
		return 0, false
	}
	wait := time.Duration((1 - tokens) * float64(authGuessEvery))
	suppressed, log := g.note(h, now)
	g.mu.Unlock()
	if log {
		g.log.Warn("console: token guessing throttled", "host", key,
			"retry_after", wait.Round(time.Millisecond), "suppressed", suppressed)
	}
	return wait, true
}

// failed counts a wrong token from remoteAddr.
func (g *authGuard) failed(remoteAddr string) {
	g.failures.Add(1)
	key, now := hostKey(remoteAddr), g.now()
	g.mu.Lock()
	h := g.host(key, true)
	h.lim.AllowN(now, 1) // spends a token; none left is what throttled sees
	suppressed, log := g.note(h, now)
	left := h.lim.TokensAt(now)
	g.mu.Unlock()
	if log {
		g.log.Warn("console: wrong token", "host", key, "guesses_left", int(math.Max(0, left)), "suppressed", suppressed)
	}
}

// note counts a refusal of h and says whether to log it, and how many
// refusals the line stands for beside itself. Called with g.mu held.
func (g *authGuard) note(h *authHost, now time.Time) (suppressed int, log bool) {
	if !h.logged.IsZero() && now.Sub(h.logged) < authLogEvery {
		h.suppressed++
		return 0, false
	}
	suppressed, h.suppressed, h.logged = h.suppressed, 0, now
	return suppressed, true
}

// retryAfter is the value of a Retry-After header: whole seconds, at
// least one.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
