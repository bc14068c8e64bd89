package console

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log lines from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines that hold every one of the words.
func (b *logBuffer) lines(words ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		ok := l != ""
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func newLogBuffer() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// clientFrom is an HTTP client whose connections come from ip, a
// loopback address: another host, as the console sees it.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func getFrom(t *testing.T, cl *http.Client, url, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: bytes.TrimSpace(b.Bytes())}
}

// Wrong tokens from a host are counted and logged; past a burst the
// host is answered 429 without its token being checked, until its
// budget refills. Other hosts are not affected.
func TestTokenGuessing(t *testing.T) {
	p := startPair(t)
	logs, log := newLogBuffer()
	const token = "right"
	c := startConsole(t, Config{Node: p.srv, Token: token, Logger: log})
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	for i := range authGuessBurst {
		wantJSONError(t, getFrom(t, a, c.URL()+"api/node", "sentinel"+strconv.Itoa(i)), http.StatusUnauthorized, "wrong token")
	}
	// Out of guesses: even the right token waits.
	r := getFrom(t, a, c.URL()+"api/node", token)
	wantJSONError(t, r, http.StatusTooManyRequests, "too many wrong tokens")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Another host has its own budget.
	wantJSONError(t, getFrom(t, b, c.URL()+"api/node", "nope"), http.StatusUnauthorized, "wrong token")
	if r := getFrom(t, b, c.URL()+"api/node", token); r.status != 200 {
		t.Errorf("another host: %s", r)
	}
	if r := getFrom(t, b, c.URL()+"metrics", token); r.status != 200 ||
		!strings.Contains(string(r.body), "\nnetsvc_console_auth_failures_total 6\n") {
		t.Errorf("metrics: %s", grepLines(string(r.body), "auth"))
	}
	// One line per host for the burst: the rest is suppressed.
	if l := logs.lines("WARN", "wrong token", "host=127.0.0.1"); len(l) != 1 {
		t.Errorf("log lines for 127.0.0.1: %q", l)
	}
	if l := logs.lines("WARN", "wrong token", "host=127.0.0.2"); len(l) != 1 {
		t.Errorf("log lines for 127.0.0.2: %q", l)
	}
	if l := logs.lines("sentinel"); len(l) != 0 {
		t.Errorf("tokens in the log: %q", l)
	}
	// The budget refills: the right token passes again.
	waitFor(t, 10*time.Second, func() error {
		if r := getFrom(t, a, c.URL()+"api/node", token); r.status != 200 {
			return fmt.Errorf("still %s", r)
		}
		return nil
	})
}

// The guard's clock, budget, log and table, with a clock of the test's.
func TestAuthGuard(t *testing.T) {
	logs, log := newLogBuffer()
	g := newAuthGuard(log)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	const host = "192.0.2.7:4000"
	for i := range authGuessBurst {
		if _, ok := g.throttled(host); ok {
			t.Fatalf("throttled after %d guesses", i)
		}
		g.failed(host)
	}
	wait, ok := g.throttled(host)
	if !ok || wait <= 0 || wait > authGuessEvery {
		t.Fatalf("after the burst: %v %v", wait, ok)
	}
	g.throttled("192.0.2.7:4001") // another port, the same host
	now = now.Add(authGuessEvery)
	if _, ok := g.throttled(host); ok {
		t.Fatal("still throttled after the budget refilled")
	}
	g.failed(host)
	if _, ok := g.throttled(host); !ok {
		t.Fatal("a guess after the refill: not throttled")
	}
	if l := logs.lines("192.0.2.7"); len(l) != 1 || !strings.Contains(l[0], "suppressed=0") {
		t.Errorf("first minute: %q", l)
	}
	// A minute on, the next line says what the last one left out: 4
	// guesses and 2 throttled requests of the burst, a guess and a
	// throttled request after the refill.
	now = now.Add(authLogEvery)
	g.failed(host)
	if l := logs.lines("192.0.2.7"); len(l) != 2 || !strings.Contains(l[1], "suppressed=8") {
		t.Errorf("a minute on: %q", l)
	}
	if n := g.failures.Load(); n != 7 {
		t.Errorf("%d failures counted, want 7", n)
	}

	// The table is bounded: the least recently seen go first.
	for i := range authHostsMax + 100 {
		g.failed(fmt.Sprintf("10.%d.%d.%d:1", i>>16, i>>8&0xff, i&0xff))
	}
	if n := len(g.hosts); n != authHostsMax || g.lru.Len() != authHostsMax {
		t.Errorf("%d hosts remembered, want %d", n, authHostsMax)
	}
	if _, ok := g.hosts["10.0.0.0"]; ok {
		t.Error("the oldest host is still there")
	}
	if _, ok := g.hosts[fmt.Sprintf("10.0.%d.%d", (authHostsMax+99)>>8&0xff, (authHostsMax+99)&0xff)]; !ok {
		t.Error("the newest host is not there")
	}
}

func TestHostKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:80":             "127.0.0.1",
		"[::ffff:192.0.2.1]:80":    "192.0.2.1",
		"[2001:db8:1:2:3::4]:80":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::]:81": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":        "fe80::/64",
		"pipe":                     "pipe",
	} {
		if got := hostKey(addr); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}
