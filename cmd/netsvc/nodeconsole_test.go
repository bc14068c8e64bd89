package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

// startNodeWithConsole runs "netsvc node" with a console on a free
// loopback port and returns the console's URL.
func startNodeWithConsole(t *testing.T, name string, extra ...string) (*background, string) {
	t.Helper()
	args := append([]string{"node", "--name", name, "--listen", "127.0.0.1:0", "--gossip", "off",
		"--console", "127.0.0.1:0", "--demo", "--demo-interval", "50ms"}, extra...)
	b := runBackground(t, args...)
	re := regexp.MustCompile(`console on (http://127\.0\.0\.1:\d+/)`)
	var url string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		select {
		case <-b.done:
			t.Fatalf("the node exited: %s", b.err.String())
		default:
		}
		m := re.FindStringSubmatch(b.err.String())
		if m == nil || !strings.Contains(b.err.String(), "demo services started") {
			return fmt.Errorf("no console line yet: %s", b.err.String())
		}
		url = m[1]
		return nil
	})
	return b, url
}

func httpGet(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNodeConsole(t *testing.T) {
	b, url := startNodeWithConsole(t, "n1")
	status, body := httpGet(t, url+"api/node")
	var n map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &n) != nil {
		t.Fatalf("%d %s", status, body)
	}
	if n["name"] != "n1" || n["version"] != buildVersion() || n["gossip"] != "off" || n["demo"] != true ||
		n["console"] != strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/") {
		t.Errorf("node: %v", n)
	}

	// tree and services read it.
	r := runCmd(context.Background(), "tree", "--console", url)
	if r.code != 0 || !regexp.MustCompile(`(?m)^n1 \[node\] node `).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^    math \[service\] services/math#\d+ address=\S+ audience=\* (\S+ )*groups=\["web-services"\] `).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^  exchange \[exchange\] group="" `).MatchString(r.stdout) {
		t.Errorf("tree:\n%v", r)
	}
	r = runCmd(context.Background(), "services", "--console", url)
	if r.code != 0 || !regexp.MustCompile(`(?m)^math +\S+ +\* +web-services +n1 +local +0$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^hidden +\S+ +"" +- +n1 +local +0$`).MatchString(r.stdout) {
		t.Errorf("services:\n%v", r)
	}
	r = runCmd(context.Background(), "services", "--console", url, "--json")
	var list []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 3 || list[0]["process"] != n["process"] {
		t.Errorf("services --json:\n%v", r)
	}

	// The gateway calls the demo services.
	resp, err := http.Post(url+"rpc/math/multiply", "application/json", strings.NewReader("[6, 7]"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(out)) != "42" {
		t.Errorf("gateway: %d %s", resp.StatusCode, out)
	}

	// Stopping the node stops the console.
	if nr := b.stop(t); nr.code != 0 || !strings.Contains(nr.stderr, "console stopped") {
		t.Errorf("%v", nr)
	}
	if _, err := http.Get(url + "api/node"); err == nil {
		t.Error("the console still answers after the node stopped")
	}
}

func TestNodeConsoleToken(t *testing.T) {
	_, url := startNodeWithConsole(t, "n2", "--console-token", "t0k3n")
	if status, body := httpGet(t, url+"api/node"); status != 401 || !strings.Contains(body, "needs a token") {
		t.Errorf("without the token: %d %s", status, body)
	}
	if status, _ := httpGet(t, url+"api/node", "Authorization", "Bearer t0k3n"); status != 200 {
		t.Errorf("with the token: %d", status)
	}
	r := runCmd(context.Background(), "tree", "--console", url, "--console-token", "t0k3n")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "n2 [node]") {
		t.Errorf("tree with the token: %v", r)
	}
	r = runCmd(context.Background(), "services", "--console", url, "--console-token", "t0k3n", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "math"`) {
		t.Errorf("services with the token: %v", r)
	}
	r = runCmd(context.Background(), "tree", "--console", url)
	if r.code != 1 || len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, "401 Unauthorized: this console needs a token") {
		t.Errorf("tree without the token: %v", r)
	}
	r = runCmd(context.Background(), "services", "--console", url, "--console-token", "wrong")
	if r.code != 1 || !strings.Contains(r.stderr, "wrong token") {
		t.Errorf("services with a wrong token: %v", r)
	}
}

func TestNodeConsoleElsewhereNeedsToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.7:8080"} {
		r := runCmd(context.Background(), "node", "--name", "x", "--listen", "127.0.0.1:0", "--gossip", "off", "--console", addr)
		if r.code != 2 || !strings.Contains(r.stderr, "set --console-token") {
			t.Errorf("%s: %v", addr, r)
		}
	}
	// The port is taken: the node does not start, and says why.
	_, url := startNodeWithConsole(t, "n3")
	taken := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	r := runCmd(context.Background(), "node", "--name", "x", "--listen", "127.0.0.1:0", "--gossip", "off", "--console", taken)
	if r.code != 1 || !strings.Contains(r.stderr, "console") || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("taken port: %v", r)
	}
}
