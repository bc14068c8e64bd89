package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange/exchangetest"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

// startNodeCmd runs "netsvc node" in-process on a free loopback port
// with the demo services and extra flags, and returns it with its
// exchange address.
func startNodeCmd(t *testing.T, name string, extra ...string) (*background, string) {
	t.Helper()
	args := append([]string{"node", "--name", name, "--listen", "127.0.0.1:0", "--demo", "--gossip", "off", "--console", "off"}, extra...)
	b := runBackground(t, args...)
	re := regexp.MustCompile(`netsvc node "` + name + `" listening on (127\.0\.0\.1:\d+)`)
	var addr string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		select {
		case <-b.done:
			t.Fatalf("node %s exited: %s", name, b.err.String())
		default:
		}
		m := re.FindStringSubmatch(b.err.String())
		if m == nil {
			return fmt.Errorf("node %s is not listening yet", name)
		}
		addr = m[1]
		return nil
	})
	return b, addr
}

// failsFast checks a command failed with exit 1 and one line on stderr
// holding want, well before its timeout.
func failsFast(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 || len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Errorf("want exit 1 and one line with %q; got %v", want, r)
	}
	if r.took > 3*time.Second {
		t.Errorf("took %v to fail; want well under the 10s timeout", r.took)
	}
}

// TestNodeMutualTLS runs a node with --tls-cert, --tls-key and --tls-ca
// and calls it with a client certificate; without one, without TLS, or
// expecting another server name, the call fails at once with the reason.
func TestNodeMutualTLS(t *testing.T) {
	pki := exchangetest.NewCA(t, "netsvc test CA")
	nodeCert, nodeKey := pki.Issue("node")
	clientCert, clientKey := pki.Issue("client")
	b, addr := startNodeCmd(t, "tls", "--tls-cert", nodeCert, "--tls-key", nodeKey, "--tls-ca", pki.File)
	ctx := context.Background()
	tlsArgs := []string{"--tls-ca", pki.File, "--tls-cert", clientCert, "--tls-key", clientKey}

	call := func(extra ...string) result {
		return runCmd(ctx, append(append([]string{"call", "--server", addr}, extra...), "math", "multiply", "6", "7")...)
	}
	if r := call(tlsArgs...); r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
		t.Fatal(r)
	}
	if r := call(append(tlsArgs, "--tls-server-name", "localhost")...); r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
	r := runCmd(ctx, append([]string{"services", "--server", addr, "--json"}, tlsArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "math"`) {
		t.Fatal(r)
	}

	failsFast(t, call("--tls-ca", pki.File),
		"netsvc call: "+addr+" refused the link: TLS handshake failed: remote error: tls: certificate required")
	failsFast(t, call(), "netsvc call: "+addr+" refused the link: TLS required")
	failsFast(t, call(append(tlsArgs, "--tls-server-name", "elsewhere.example")...),
		"netsvc call: cannot link to "+addr+": TLS handshake failed: tls: failed to verify certificate: x509: certificate is valid for localhost, not elsewhere.example")
	other := exchangetest.NewCA(t, "netsvc test CA")
	failsFast(t, call("--tls-ca", other.File, "--tls-cert", clientCert, "--tls-key", clientKey),
		"cannot link to "+addr+": TLS handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority")

	nr := b.stop(t)
	if nr.code != 0 {
		t.Fatal(nr)
	}
	for _, want := range []string{
		`msg="TLS handshake failed" exchange="" remote=127.0.0.1:`,
		`reason="tls: client didn't provide a certificate"`,
		`reason="the peer does not speak TLS (tls: first record does not look like a TLS handshake)"`,
		`reason="remote error: tls: bad certificate"`,
	} {
		if !strings.Contains(nr.stderr, want) {
			t.Errorf("node log lacks %s:\n%s", want, nr.stderr)
		}
	}
}

// TestNodeTLSWithoutClientCertificates serves TLS without --tls-ca: a
// client verifying the node with --tls-ca needs no certificate, and a
// plain client is refused.
func TestNodeTLSWithoutClientCertificates(t *testing.T) {
	pki := exchangetest.NewCA(t, "netsvc test CA")
	cert, key := pki.Issue("node")
	_, addr := startNodeCmd(t, "tls", "--tls-cert", cert, "--tls-key", key)
	ctx := context.Background()
	r := runCmd(ctx, "call", "--server", addr, "--tls-ca", pki.File, "math", "multiply", "6", "7")
	if r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
	failsFast(t, runCmd(ctx, "call", "--server", addr, "math", "multiply", "6", "7"), "TLS required")
}

// TestTLSClientToPlainNode checks a client with TLS fails at once
// against a node without.
func TestTLSClientToPlainNode(t *testing.T) {
	pki := exchangetest.NewCA(t, "netsvc test CA")
	_, addr := startNodeCmd(t, "plain")
	r := runCmd(context.Background(), "call", "--server", addr, "--tls-ca", pki.File, "math", "multiply", "6", "7")
	failsFast(t, r, "cannot link to "+addr+": TLS handshake failed: the peer does not speak TLS")
}

func TestTLSFlagErrors(t *testing.T) {
	pki := exchangetest.NewCA(t, "netsvc test CA")
	cert, key := pki.Issue("node")
	ctx := context.Background()
	for _, args := range [][]string{
		{"node", "--tls-cert", cert},
		{"node", "--tls-key", key},
		{"node", "--tls-ca", pki.File},
		{"node", "--tls-ca", pki.File, "--tls-key", key},
		{"call", "--tls-cert", cert, "math", "multiply", "6", "7"},
		{"call", "--tls-key", key, "--tls-ca", pki.File, "math", "multiply", "6", "7"},
		{"call", "--tls-server-name", "localhost", "math", "multiply", "6", "7"},
		{"publish", "--tls-cert", cert, "--as", "p", "s", "1"},
		{"subscribe", "--tls-key", key, "seed", "next"},
		{"services", "--tls-cert", cert},
	} {
		r := runCmd(ctx, args...)
		if r.code != 2 || len(lines(r.stderr)) != 2 || !strings.HasPrefix(r.stderr, "netsvc "+args[0]+": --tls-") {
			t.Errorf("%v: %v", args, r)
		}
	}
	// Files that cannot be read: one line naming the file, exit 1.
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "--gossip", "off", "--console", "off", "--listen", "127.0.0.1:0", "--tls-cert", missing, "--tls-key", key},
			"netsvc node: TLS: cannot load certificate " + missing + " with key " + key + ": open " + missing + ": no such file or directory"},
		{[]string{"node", "--gossip", "off", "--console", "off", "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--tls-ca", cert + "x"},
			"netsvc node: TLS: cannot read CA file: open " + cert + "x: no such file or directory"},
		{[]string{"node", "--gossip", "off", "--console", "off", "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--tls-ca", key},
			"netsvc node: TLS: CA file " + key + " holds no PEM certificate"},
		{[]string{"call", "--server", "127.0.0.1:1", "--tls-ca", missing, "math", "multiply", "6", "7"},
			"netsvc call: TLS: cannot read CA file: open " + missing + ": no such file or directory"},
	} {
		r := runCmd(ctx, tc.args...)
		if r.code != 1 || r.stderr != tc.want+"\n" {
			t.Errorf("%v: %v\nwant stderr %s", tc.args, r, tc.want)
		}
	}
}

// TestNodeToken checks "netsvc node --token": a call without the token,
// or with another, is refused at once as not authorised; with it, it works.
func TestNodeToken(t *testing.T) {
	_, addr := startNodeCmd(t, "tok", "--token", "s3cret")
	ctx := context.Background()
	call := func(extra ...string) result {
		return runCmd(ctx, append(append([]string{"call", "--server", addr}, extra...), "math", "multiply", "6", "7")...)
	}
	failsFast(t, call(), "netsvc call: "+addr+" refused the link: not authorised: wrong or missing token")
	failsFast(t, call("--token", "guess"), "netsvc call: "+addr+" refused the link: not authorised: wrong or missing token")
	if r := call("--token", "s3cret"); r.code != 0 || r.stdout != "42\n" {
		t.Fatal(r)
	}
}

// TestNodeGossipKey runs three nodes on gossip: two with one --gossip-key
// mesh (a call through the second reaches the demo math of the first);
// the third, with another key, cannot join, says why in its log, and
// keeps running.
func TestNodeGossipKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	other := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	gossipOf := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	start := func(name, gossip, key string, extra ...string) (*background, string) {
		t.Helper()
		args := []string{"node", "--name", name, "--listen", "127.0.0.1:0", "--console", "off", "--gossip", gossip,
			"--gossip-preset", "fast", "--gossip-key", key, "--retry", "200ms"}
		b := runBackground(t, append(args, extra...)...)
		re := regexp.MustCompile(`netsvc node "` + name + `" listening on (127\.0\.0\.1:\d+)`)
		var addr string
		nodetest.WaitFor(t, 10*time.Second, func() error {
			select {
			case <-b.done:
				t.Fatalf("node %s exited: %s", name, b.err.String())
			default:
			}
			if m := re.FindStringSubmatch(b.err.String()); m != nil && strings.Contains(b.err.String(), "gossip on "+gossip) {
				addr = m[1]
				return nil
			}
			return fmt.Errorf("node %s is not gossiping yet", name)
		})
		return b, addr
	}
	ga := gossipOf()
	a, _ := start("ka", ga, key, "--demo")
	_, bAddr := start("kb", gossipOf(), key, "--join", ga)
	ctx := context.Background()
	nodetest.WaitFor(t, 15*time.Second, func() error {
		if r := runCmd(ctx, "call", "--server", bAddr, "math", "multiply", "6", "7"); r.code != 0 || r.stdout != "42\n" {
			return fmt.Errorf("no mesh yet: %v", r)
		}
		return nil
	})

	w, wAddr := start("kw", gossipOf(), other, "--join", ga)
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(w.err.String(), `level=WARN msg="cannot join yet; retrying in the background"`) ||
			!strings.Contains(w.err.String(), "no installed keys could decrypt the message") {
			return fmt.Errorf("kw did not log a failed join with the reason yet:\n%s", w.err.String())
		}
		return nil
	})
	// The seed says so too, with the intruder's address.
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(a.err.String(), "no installed keys could decrypt the message from=127.0.0.1:") {
			return fmt.Errorf("ka did not log the undecryptable join:\n%s", a.err.String())
		}
		return nil
	})
	r := runCmd(ctx, "call", "--server", wAddr, "math", "multiply", "6", "7")
	if r.code != 1 || !strings.Contains(r.stderr, "no such service") {
		t.Errorf("a call through the node with another key: %v", r)
	}
	if strings.Contains(a.err.String(), `node=kw`) || strings.Contains(a.err.String(), `peer=kw`) {
		t.Errorf("ka linked to kw:\n%s", a.err.String())
	}
	if wr := w.stop(t); wr.code != 0 {
		t.Errorf("kw did not stop cleanly: %v", wr)
	}
}

// TestConsoleOverTLS: --console-tls-cert/--console-tls-key serve the
// console over HTTPS; netsvc tree reads it with the CA.
func TestConsoleOverTLS(t *testing.T) {
	pki := exchangetest.NewCA(t, "netsvc test CA")
	cert, key := pki.Issue("console")
	port := freePort(t)
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", port)
	b := runBackground(t, "node", "--name", "tlscon", "--listen", "127.0.0.1:0", "--gossip", "off",
		"--console", consoleAddr, "--console-token", "tok", "--console-tls-cert", cert, "--console-tls-key", key)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool()}}}
	nodetest.WaitFor(t, 10*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, "https://"+consoleAddr+"/api/node", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if !strings.Contains(b.err.String(), "console on https://"+consoleAddr) {
		t.Errorf("the banner does not give the https URL: %s", b.err.String())
	}
	if r := runCmd(context.Background(), "node", "--console-tls-cert", cert); r.code != 2 || !strings.Contains(r.stderr, "go together") {
		t.Errorf("cert without key: %v", r)
	}
}
