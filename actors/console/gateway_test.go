package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

func TestGatewayCalls(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	for _, tc := range []struct {
		path, body, want string
	}{
		{"rpc/math/multiply", "[6, 7]", "42"},
		{"rpc/math/multiply", "[6.0, 1e1]", "60"}, // integral numbers are integers
		{"rpc/math/echo", `["<b>&"]`, `"<b>&"`},
		{"rpc/math/echo", `[{"a": [1, 2.5, null, true], "b": {"c": "d"}}]`, `{"a":[1,2.5,null,true],"b":{"c":"d"}}`},
		{"rpc/math/echo", `[18446744073709551615]`, `18446744073709551615`},
		{"rpc/echo/echo", `[{"k": "remote"}]`, `{"k":"remote"}`},   // a service of the client, across the link
		{"rpc/math/echo?timeout=2s", ` [ "spaces" ] `, `"spaces"`}, // white space and a timeout
	} {
		r := do(t, http.MethodPost, c.URL()+tc.path, tc.body, "Content-Type", "application/json")
		if r.status != 200 || string(r.body) != tc.want || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: got %s, want 200 %s", tc.path, tc.body, r, tc.want)
		}
	}
}

func TestGatewayFailures(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	for _, tc := range []struct {
		path, body string
		status     int
		code       service.Code
		origin     string
		details    string
	}{
		{"rpc/nope/multiply", "[]", 404, service.CodeNoSuchService, "netsvc", `no service named "nope"`},
		{"rpc/math/divide", "[1, 2]", 404, service.CodeNoSuchMethod, "netsvc", "divide"},
		{"rpc/math/multiply", `["x", 7]`, 400, service.CodeBadArguments, "netsvc", "multiply: argument 1"},
		{"rpc/math/multiply", `[1]`, 400, service.CodeBadArguments, "netsvc", "expected 2 arguments"},
		{"rpc/math/multiply", `[1.5, 2]`, 400, service.CodeBadArguments, "netsvc", "argument 1"},
		{"rpc/math/echo", ``, 400, service.CodeBadArguments, "netsvc", "received 0"}, // an empty body is no arguments
		{"rpc/math/multiply", `{"x": 1}`, 400, service.CodeBadArguments, OriginConsole, "want a JSON array"},
		{"rpc/math/multiply", `6`, 400, service.CodeBadArguments, OriginConsole, "got a number"},
		{"rpc/math/multiply", `[6, 7`, 400, service.CodeBadArguments, OriginConsole, "invalid JSON"},
		{"rpc/math/multiply", `[6, 7] [8]`, 400, service.CodeBadArguments, OriginConsole, "more text"},
		{"rpc/math/multiply", `[1e400]`, 400, service.CodeBadArguments, OriginConsole, "out of range"},
		{"rpc/math/multiply?timeout=soon", `[6, 7]`, 400, service.CodeBadArguments, OriginConsole, "timeout"},
		{"rpc/math/multiply?timeout=-1s", `[6, 7]`, 400, service.CodeBadArguments, OriginConsole, "timeout"},
		{"rpc/math/multiply?timeout=1h", `[6, 7]`, 400, service.CodeBadArguments, OriginConsole, "at most"},
		{"rpc/math/fail", `[]`, 500, 1001, "math", "no more widgets"},
		{"rpc/math/boom", `[]`, 500, service.CodeHandlerError, "math", "the handler broke"},
		{"rpc/never/wait?timeout=100ms", `[]`, 504, service.CodeTimedOut, "netsvc", "no answer from never within 100ms"},
	} {
		r := do(t, http.MethodPost, c.URL()+tc.path, tc.body)
		var f FailureBody
		if err := json.Unmarshal(r.body, &f); err != nil {
			t.Errorf("%s %s: not JSON: %s", tc.path, tc.body, r)
			continue
		}
		if r.status != tc.status || f.Code != tc.code || f.Origin != tc.origin || f.Status != tc.status ||
			!strings.Contains(f.Details, tc.details) || f.Description == "" || f.Error == "" {
			t.Errorf("%s %s: got %s; want %d, code %d from %s, details with %q", tc.path, tc.body, r, tc.status, tc.code, tc.origin, tc.details)
		}
		// The four fields are always there, details too.
		var m map[string]any
		json.Unmarshal(r.body, &m)
		for _, k := range []string{"code", "description", "origin", "details"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %s", tc.path, k, r.body)
			}
		}
	}
	if fb := (FailureBody{}); true {
		r := do(t, http.MethodPost, c.URL()+"rpc/math/fail", "[]")
		json.Unmarshal(r.body, &fb)
		if fb.Description != "out of stock" {
			t.Errorf("an application failure keeps its description: %s", r)
		}
	}

	// Not a call.
	r := get(t, c.URL()+"rpc/math/multiply")
	wantJSONError(t, r, 405, "POST a JSON array")
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
	wantJSONError(t, do(t, http.MethodPost, c.URL()+"rpc/math", "[]"), 404, "want POST /rpc/SERVICE/METHOD")
	wantJSONError(t, do(t, http.MethodPost, c.URL()+"rpc/math/", "[]"), 404, "want POST /rpc/SERVICE/METHOD")
	wantJSONError(t, do(t, http.MethodPost, c.URL()+"rpc/", "[]"), 404, "want POST /rpc/SERVICE/METHOD")
}

func TestGatewayStatusOfLinkLoss(t *testing.T) {
	p := startPair(t)
	c := startConsole(t, Config{Node: p.srv})
	// A call to the client's service fails at once when the client goes.
	done := make(chan response, 1)
	ctx := context.Background()
	if _, err := p.cli.Runtime().Start(ctx, "stuck", neverService()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if len(p.srv.Runtime().Lookup("stuck")) == 0 {
			return errTest("the server does not see stuck yet")
		}
		return nil
	})
	go func() { done <- do(t, http.MethodPost, c.URL()+"rpc/stuck/wait?timeout=20s", "[]") }()
	waitFor(t, 10*time.Second, func() error {
		if p.srv.Runtime().Kernel().Stats().Pending == 0 {
			return errTest("the call is not pending yet")
		}
		return nil
	})
	t0 := time.Now()
	go p.stopCli()
	select {
	case r := <-done:
		var f FailureBody
		json.Unmarshal(r.body, &f)
		if r.status != 503 || (f.Code != service.CodeLinkLost && f.Code != service.CodeWithdrawn) {
			t.Errorf("got %s, want 503 link lost or withdrawn", r)
		}
		t.Logf("answered after %v", time.Since(t0))
	case <-time.After(15 * time.Second):
		t.Fatal("the call did not fail when the link went")
	}
}

// A service of audience "" is visible inside its own process only
// (rule 38): the gateway, which speaks for HTTP clients, answers
// for it as for a name nobody has, unless GatewayCallsLocalOnly.
func TestGatewayLocalOnly(t *testing.T) {
	p := startPair(t)
	ctx := context.Background()
	// twin: hidden here, visible from the client; the gateway must pass
	// the hidden one over, although it is the nearer.
	twin := func(who string) service.Service {
		return service.SetupFunc(func(a *service.Agent) error {
			a.Export("who", func() string { return who })
			return nil
		})
	}
	if _, err := p.srv.Runtime().Start(ctx, "twin", twin("hidden"), service.Audience("")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cli.Runtime().Start(ctx, "twin", twin("visible")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if len(p.srv.Runtime().Lookup("twin")) < 2 {
			return errTest("the server does not see both twins yet")
		}
		return nil
	})
	c := startConsole(t, Config{Node: p.srv})
	r := do(t, http.MethodPost, c.URL()+"rpc/hidden/echo", `["in-process"]`)
	nope := do(t, http.MethodPost, c.URL()+"rpc/nope/echo", `["in-process"]`)
	if r.status != 404 || strings.ReplaceAll(string(r.body), "hidden", "nope") != string(nope.body) {
		t.Errorf("hidden: got %s; want the answer for an unknown name: %s", r, nope)
	}
	if r := do(t, http.MethodPost, c.URL()+"rpc/twin/who", `[]`); r.status != 200 || string(r.body) != `"visible"` {
		t.Errorf("twin: got %s, want the visible one", r)
	}
	wantMetric(t, c, `netsvc_gateway_rejected_total{reason="local_only"} 1`)

	open := startConsole(t, Config{Node: p.srv, GatewayCallsLocalOnly: true})
	if r := do(t, http.MethodPost, open.URL()+"rpc/hidden/echo", `["in-process"]`); r.status != 200 || string(r.body) != `"in-process"` {
		t.Errorf("GatewayCallsLocalOnly: got %s", r)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestGatewayBodyLimit(t *testing.T) {
	ctx := context.Background()
	n, err := startTestNode("small", service.Config{MaxPayload: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	if _, err := n.Runtime().Start(ctx, "math", mathService()); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, Config{Node: n})
	big := `["` + strings.Repeat("x", 2000) + `"]`
	r := do(t, http.MethodPost, c.URL()+"rpc/math/echo", big)
	var f FailureBody
	json.Unmarshal(r.body, &f)
	if r.status != 413 || f.Code != service.CodePayloadTooLarge {
		t.Errorf("got %s", r)
	}
	// Under the body limit, over the payload limit once encoded (a
	// float is 4 bytes of JSON here, 9 of CBOR): the runtime says so.
	r = do(t, http.MethodPost, c.URL()+"rpc/math/echo", `[[`+strings.Repeat("1.1,", 200)+`1.1]]`)
	json.Unmarshal(r.body, &f)
	if r.status != 413 || f.Code != service.CodePayloadTooLarge {
		t.Errorf("got %s", r)
	}
	if r := do(t, http.MethodPost, c.URL()+"rpc/math/echo", `["small"]`); r.status != 200 {
		t.Errorf("got %s", r)
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[service.Code]int{
		service.CodeNoSuchService: 404, service.CodeNoSuchMethod: 404, service.CodeBadArguments: 400,
		service.CodePayloadTooLarge: 413, service.CodeTimedOut: 504, service.CodeOverloaded: 503,
		service.CodeWithdrawn: 503, service.CodeLinkLost: 503, service.CodeShutdown: 503,
		service.CodeNotAuthorised: 403, service.CodeHandlerError: 500, service.CodeResponseEncoding: 500,
		service.CodeResponseDecoding: 502, service.CodeResponseAborted: 502, 1001: 500,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("%d (%v): %d, want %d", code, code, got, want)
		}
	}
}
