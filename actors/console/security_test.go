package console

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

func TestRefusesOtherHostsWithoutToken(t *testing.T) {
	p := startPair(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		c, err := Start(Config{Addr: addr, Node: p.srv})
		if err == nil {
			c.Stop(t.Context())
			t.Errorf("%s: started without a token", addr)
			continue
		}
		if !strings.Contains(err.Error(), "token") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if _, err := Start(Config{Addr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "no node") {
		t.Errorf("no node: %v", err)
	}
	if _, err := Start(Config{Addr: "nowhere", Node: p.srv}); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("bad address: %v", err)
	}
	// Loopback in all its spellings is fine.
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		c, err := Start(Config{Addr: addr, Node: p.srv})
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		c.Stop(t.Context())
	}
}

func TestToken(t *testing.T) {
	p := startPair(t)
	const token = "s3cret token/+"
	c := startConsole(t, Config{Node: p.srv, Token: token, PingInterval: 50 * time.Millisecond})
	u := c.URL()
	q := "?token=s3cret%20token%2F%2B"
	for i, path := range []string{"", "api/node", "api/tree", "api/services", "api/connections", "api/members",
		"api/subscriptions", "api/events", "metrics", "app.js", "style.css", "nothing/here"} {
		r := get(t, u+path)
		wantJSONError(t, r, http.StatusUnauthorized, "needs a token")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", path, r.header.Get("WWW-Authenticate"))
		}
		if i < 2 { // a wrong token is a guess: a few, not to be throttled (TestTokenGuessing)
			wantJSONError(t, get(t, u+path, "Authorization", "Bearer nope"), http.StatusUnauthorized, "wrong token")
			wantJSONError(t, get(t, u+path+"?token=nope"), http.StatusUnauthorized, "wrong token")
		}
	}
	wantJSONError(t, do(t, http.MethodPost, u+"rpc/math/multiply", "[6, 7]"), http.StatusUnauthorized, "needs a token")

	// The header, or the query parameter.
	var n map[string]any
	if r := get(t, u+"api/node", "Authorization", "Bearer "+token); r.status != 200 {
		t.Errorf("bearer: %s", r)
	} else if r.decode(t, &n); n["token"] != true {
		t.Errorf("node: %v", n)
	}
	if r := get(t, u+"api/node", "Authorization", "bearer "+token); r.status != 200 {
		t.Errorf("lower-case bearer: %s", r)
	}
	if r := get(t, u+"api/tree"+q); r.status != 200 {
		t.Errorf("query: %s", r)
	}
	if r := do(t, http.MethodPost, u+"rpc/math/multiply"+q+"&timeout=5s", "[6, 7]"); r.status != 200 || string(r.body) != "42" {
		t.Errorf("gateway: %s", r)
	}
	if r := do(t, http.MethodPost, u+"rpc/math/multiply", "[6, 7]", "Authorization", "Bearer "+token); r.status != 200 {
		t.Errorf("gateway with the header: %s", r)
	}
	// The page opened with ?token= moves it to a cookie and drops it from
	// the URL; the page's files and event stream then go with the cookie.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := browser.Get(u + q)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.RawQuery != "" || len(resp.Request.URL.Query()["token"]) != 0 {
		t.Errorf("page: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, path := range []string{"app.js", "api/node"} {
		resp, err := browser.Get(u + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s with the cookie: %d", path, resp.StatusCode)
		}
	}
	var cookie string
	for _, ck := range jar.Cookies(resp.Request.URL) {
		cookie = ck.Name + "=" + ck.Value
	}
	if r := get(t, u+"api/node", "Cookie", cookie); r.status != 200 || !strings.HasPrefix(cookie, tokenCookie+"=") {
		t.Errorf("the cookie %q: %s", cookie, r)
	}
	// The query parameter still opens the event stream (a script's
	// EventSource cannot send headers).
	s := openEvents(t, u+"api/events"+q)
	s.next(t, 10*time.Second, "registry", nil)
	// With a token, any Host is fine (the token is the guard).
	if r := get(t, u+"api/node", "Authorization", "Bearer "+token, "Host", "console.example:8080"); r.status != 200 {
		t.Errorf("another host name: %s", r)
	}
}
