package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

// Distinctive tokens, so a leak into any output is found by a search.
const (
	oldToken = "tok-old-7f3a1c"
	newToken = "tok-new-91c2e8"
)

// noSecrets fails the test when out shows any of the tokens.
func noSecrets(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows a secret:\n%s", what, out)
		}
	}
}

// unsetEnv removes a variable for the test, restoring it after.
func unsetEnv(t *testing.T, name string) {
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// TestTokenRotation runs the middle of a rotation on real nodes: a node
// holding new,old accepts clients proving either; a node still holding
// only old refuses a client proving only new, and accepts one that
// holds old,new (which proves old).
func TestTokenRotation(t *testing.T) {
	unsetEnv(t, "NETSVC_TOKEN")
	both, bothAddr := startNodeCmd(t, "both", "--token", newToken+","+oldToken)
	oldOnly, oldAddr := startNodeCmd(t, "oldonly", "--token-file", writeSecret(t, oldToken+"\n"))
	ctx := context.Background()
	call := func(addr string, extra ...string) result {
		return runCmd(ctx, append(append([]string{"call", "--server", addr}, extra...), "math", "multiply", "6", "7")...)
	}
	for _, args := range [][]string{
		{"--token", oldToken},
		{"--token", newToken},
		{"--token-file", writeSecret(t, newToken+"\n"+oldToken+"\n")},
	} {
		if r := call(bothAddr, args...); r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
			t.Errorf("node new,old, client %v: %v", args[0], r)
		}
	}
	r := call(oldAddr, "--token", newToken)
	failsFast(t, r, "netsvc call: "+oldAddr+" refused the link: not authorised: wrong or missing token (token from --token)")
	noSecrets(t, "the refused call", r.stderr, oldToken, newToken)
	if r := call(oldAddr, "--token", oldToken+","+newToken); r.code != 0 || r.stdout != "42\n" {
		t.Errorf("node old, client old,new: %v", r)
	}
	if r := call(bothAddr); r.code != 1 || !strings.Contains(r.stderr, "not authorised") ||
		!strings.Contains(r.stderr, "no token given: set --token, --token-file or NETSVC_TOKEN") {
		t.Errorf("node new,old, client without a token: %v", r)
	}
	for _, n := range []*background{both, oldOnly} {
		nr := n.stop(t)
		if nr.code != 0 {
			t.Errorf("node: %v", nr)
		}
		noSecrets(t, "the node's log", nr.stderr, oldToken, newToken)
	}
}

// TestTokenFromEnvironment checks "netsvc call" proves the token in
// NETSVC_TOKEN to a node that read it from --token-file, and that a flag
// or file still wins over the variable.
func TestTokenFromEnvironment(t *testing.T) {
	unsetEnv(t, "NETSVC_TOKEN")
	file := writeSecret(t, "\n  "+newToken+"\n")
	_, addr := startNodeCmd(t, "envtok", "--token-file", file)
	ctx := context.Background()
	call := func(extra ...string) result {
		return runCmd(ctx, append(append([]string{"call", "--server", addr}, extra...), "math", "multiply", "6", "7")...)
	}
	failsFast(t, call(), "not authorised: wrong or missing token (no token given: set --token, --token-file or NETSVC_TOKEN)")

	t.Setenv("NETSVC_TOKEN", newToken)
	if r := call(); r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
		t.Fatalf("token from NETSVC_TOKEN: %v", r)
	}

	t.Setenv("NETSVC_TOKEN", oldToken)
	r := call()
	failsFast(t, r, "netsvc call: "+addr+" refused the link: not authorised: wrong or missing token (token from NETSVC_TOKEN)")
	noSecrets(t, "the refused call", r.stderr, oldToken, newToken)
	if r := call("--token", newToken); r.code != 0 || r.stdout != "42\n" {
		t.Errorf("--token over NETSVC_TOKEN: %v", r)
	}
	if r := call("--token-file", file); r.code != 0 || r.stdout != "42\n" {
		t.Errorf("--token-file over NETSVC_TOKEN: %v", r)
	}

	t.Setenv("NETSVC_TOKEN", " ")
	r = call()
	if r.code != 1 || r.stderr != "netsvc call: NETSVC_TOKEN is set but holds no exchange token: unset it, or give the exchange token\n" {
		t.Errorf("empty NETSVC_TOKEN: %v", r)
	}
	missing := file + ".missing"
	r = call("--token-file", missing)
	if r.code != 1 || r.stderr != "netsvc call: cannot read the exchange token from --token-file "+missing+": no such file or directory\n" {
		t.Errorf("missing --token-file: %v", r)
	}
}

// TestConsoleTokenFromEnvironment reads the console token of a node from
// a file and of tree and services from NETSVC_CONSOLE_TOKEN.
func TestConsoleTokenFromEnvironment(t *testing.T) {
	unsetEnv(t, "NETSVC_CONSOLE_TOKEN")
	b, url := startNodeWithConsole(t, "ct", "--console-token-file", writeSecret(t, newToken+"\n"))
	ctx := context.Background()
	r := runCmd(ctx, "tree", "--console", url)
	if r.code != 1 || !strings.Contains(r.stderr, "(no console token given: set --console-token, --console-token-file or NETSVC_CONSOLE_TOKEN)") {
		t.Errorf("tree without a token: %v", r)
	}
	t.Setenv("NETSVC_CONSOLE_TOKEN", newToken)
	if r := runCmd(ctx, "tree", "--console", url); r.code != 0 || !strings.HasPrefix(r.stdout, "ct [node]") {
		t.Errorf("tree with NETSVC_CONSOLE_TOKEN: %v", r)
	}
	if r := runCmd(ctx, "services", "--console", url, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"name": "math"`) {
		t.Errorf("services with NETSVC_CONSOLE_TOKEN: %v", r)
	}
	t.Setenv("NETSVC_CONSOLE_TOKEN", oldToken)
	r = runCmd(ctx, "services", "--console", url)
	if r.code != 1 || !strings.Contains(r.stderr, "(console token from NETSVC_CONSOLE_TOKEN)") {
		t.Errorf("services with a wrong NETSVC_CONSOLE_TOKEN: %v", r)
	}
	noSecrets(t, "the refused services", r.stderr, oldToken, newToken)
	nr := b.stop(t)
	if !strings.Contains(nr.stderr, "(add ?token=TOKEN, the console token from --console-token-file ") {
		t.Errorf("the node does not say where its console token came from:\n%s", nr.stderr)
	}
	noSecrets(t, "the node's log", nr.stderr, oldToken, newToken)
}

// TestNodeWarnsBeyondLoopback starts a node listening on every
// interface: without a token or TLS it warns, in its log and in a line
// for people; with a token, or on loopback, it says nothing.
func TestNodeWarnsBeyondLoopback(t *testing.T) {
	unsetEnv(t, "NETSVC_TOKEN")
	const human = "netsvc node: warning: the exchange listens on "
	const logged = `level=WARN msg="exchange open to other hosts without a token or TLS"`
	start := func(listen string, extra ...string) string {
		t.Helper()
		args := append([]string{"node", "--name", "w", "--listen", listen, "--gossip", "off", "--console", "off"}, extra...)
		b := runBackground(t, args...)
		// "node started" is logged after any warning.
		nodetest.WaitFor(t, 10*time.Second, func() error {
			select {
			case <-b.done:
				t.Fatalf("node exited: %s", b.err.String())
			default:
			}
			if !strings.Contains(b.err.String(), `msg="node started"`) {
				return fmt.Errorf("the node has not started yet")
			}
			return nil
		})
		return b.stop(t).stderr
	}

	out := start("0.0.0.0:0")
	if !regexp.MustCompile(`(?m)^`+human+`\S+:\d+, beyond loopback, with no token and no TLS: .*; set a token \(--token, --token-file or NETSVC_TOKEN\), `+
		`serve TLS \(--tls-cert, --tls-key, --tls-ca\), or listen on 127\.0\.0\.1$`).MatchString(out) || !strings.Contains(out, logged) {
		t.Errorf("no warning for 0.0.0.0 without a token:\n%s", out)
	}
	for _, args := range [][]string{
		{"0.0.0.0:0", "--token", newToken},
		{"127.0.0.1:0"},
	} {
		if out := start(args[0], args[1:]...); strings.Contains(out, "warning") || strings.Contains(out, "WARN") {
			t.Errorf("%v: a warning:\n%s", args, out)
		}
	}
}

// TestServerFromEnvironment: NETSVC_SERVER (and NETSVC_GROUP) spare
// repeating --server on every client command; a flag given wins.
func TestServerFromEnvironment(t *testing.T) {
	_, addr := startNodeCmd(t, "envsrv")
	ctx := context.Background()
	t.Setenv("NETSVC_SERVER", addr)
	t.Setenv("NETSVC_GROUP", "")
	if r := runCmd(ctx, "call", "math", "multiply", "6", "7"); r.code != 0 || r.stdout != "42\n" {
		t.Fatalf("server from NETSVC_SERVER: %v", r)
	}
	t.Setenv("NETSVC_SERVER", "127.0.0.1:1") // nobody there
	if r := runCmd(ctx, "call", "--server", addr, "math", "multiply", "6", "7"); r.code != 0 || r.stdout != "42\n" {
		t.Fatalf("--server over NETSVC_SERVER: %v", r)
	}
	t.Setenv("NETSVC_SERVER", addr)
	t.Setenv("NETSVC_GROUP", "elsewhere")
	r := runCmd(ctx, "call", "math", "multiply", "6", "7")
	if r.code == 0 || !strings.Contains(r.stderr, "elsewhere") {
		t.Fatalf("group from NETSVC_GROUP: %v", r)
	}
	if v, flag := runCmd(ctx, "version"), runCmd(ctx, "--version"); flag.code != 0 || flag.stdout != v.stdout || !strings.HasPrefix(v.stdout, "netsvc ") {
		t.Fatalf("--version %v, version %v", flag, v)
	}
}
