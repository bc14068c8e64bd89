package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/service"
)

// waitFor polls fn until it returns nil, failing the test with fn's last
// error when d passes.
func waitFor(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pair is a server node with test services and a client node linked to
// it, like a netsvc node and a program using it.
type pair struct {
	srv, cli *testNode
	stopCli  func() // stops the client once (Node.Stop is not idempotent)
}

// startPair starts the server "srv" on a free loopback port with the
// services math (group web), never and hidden, and the client "cli"
// with the service echo, linked to it, and waits until the link synced.
func startPair(t testing.TB) pair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := startTestNode("srv", service.Config{}, serverEndpoint("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(srv) })
	rt := srv.Runtime()
	if _, err := rt.Start(ctx, "math", mathService(), service.Groups("web")); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, "never", neverService()); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, "hidden", mathService(), service.Audience("")); err != nil {
		t.Fatal(err)
	}
	cli, err := startTestNode("cli", service.Config{}, clientEndpoint(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stopCli := func() { once.Do(func() { stopNode(cli) }) }
	t.Cleanup(stopCli)
	if _, err := cli.Runtime().Start(ctx, "echo", service.SetupFunc(func(a *service.Agent) error {
		a.Export("echo", func(v any) any { return v })
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if len(rt.Lookup("echo")) == 0 {
			return errors.New("the server does not see the client's echo yet")
		}
		return nil
	})
	return pair{srv: srv, cli: cli, stopCli: stopCli}
}

func stopNode(n *testNode) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Stop(ctx)
}

// mathService exports multiply(int, int), echo, fail (an application
// failure), boom (a plain error) and spawns a child actor "worker".
func mathService() service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		a.Export("echo", func(v any) any { return v })
		a.Export("fail", func() error { return service.Fail(1001, "out of stock", "no more widgets") })
		a.Export("boom", func() error { return errors.New("the handler broke") })
		_, err := a.Spawn("worker", func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) })
		return err
	})
}

// neverService exports wait, which never answers.
func neverService() service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("wait", func(r *service.Request) error {
			r.Delay()
			return nil
		})
		return nil
	})
}

// startConsole starts a console for n on a free loopback port and stops
// it when the test ends.
func startConsole(t testing.TB, cfg Config) *Console {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	return c
}

// response is an HTTP answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// decode decodes the JSON body into v, failing the test when it is not.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, r)
	}
}

// client bounds every request generously: under -race on a busy machine
// a gateway call with a 16 MiB body takes tens of seconds.
var client = &http.Client{Timeout: 2 * time.Minute}

// do sends a request to the console and reads the answer.
func do(t testing.TB, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: bytes.TrimSpace(b)}
}

func get(t testing.TB, url string, header ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, "", header...)
}

// getJSON GETs url, wants 200 and decodes the answer into v.
func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	r := get(t, url)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %s", url, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	r.decode(t, v)
}

// wantJSONError checks an error answer: the status and a JSON body with
// an "error" sentence containing want.
func wantJSONError(t testing.TB, r response, status int, want string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("want a JSON error, got %s", r)
	}
	msg, _ := m["error"].(string)
	if r.status != status || msg == "" || !strings.Contains(msg, want) {
		t.Fatalf("want %d with an error containing %q, got %s", status, want, r)
	}
	if strings.Contains(string(r.body), "goroutine ") || strings.Contains(string(r.body), ".go:") {
		t.Fatalf("a stack trace in the answer: %s", r)
	}
	return m
}

// startClient starts a client node named name linked to the server at
// addr, waits until the link synced and stops it when the test ends.
func startClient(t testing.TB, addr, name string) *testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := startTestNode(name, service.Config{}, clientEndpoint(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	if err := n.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}
