package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
)

func TestParseLimits(t *testing.T) {
	var l nodeLimits
	f := limitsFlag{&l}
	if err := f.Set("queued=32MiB,handshaking=10"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("frame-timeout=2s"); err != nil {
		t.Fatal(err)
	}
	if l.node.Queued != 32<<20 || l.node.Handshaking != 10 || l.link.FrameTimeout != 2*time.Second {
		t.Fatalf("parsed %+v %+v", l.node, l.link)
	}
	if got := f.String(); got != "frame-timeout=2s,handshaking=10,queued=32MiB" {
		t.Fatalf("String() = %q", got)
	}
	for in, want := range map[string]string{
		"nope=1":            `unknown limit "nope"`,
		"queued":            "want NAME=VALUE",
		"queued=-5":         "want a positive size",
		"queued=2XB":        "want a positive size",
		"handshaking=1.5":   "want a positive whole number",
		"frame-timeout=0s":  "want a positive duration",
		"frame-timeout=abc": "want a positive duration",
	} {
		if err := f.Set(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v, want %q", in, err, want)
		}
	}
	r := runCmd(context.Background(), "node", "--limit", "queued=lots")
	if r.code != exitUsage || !strings.Contains(r.stderr, "limit queued") {
		t.Fatalf("a bad --limit: %v", r)
	}
}

// TestNodeLimitFlag checks that a --limit reaches the node: with room
// for two connections in their handshake from one host, a third is
// refused at once with the reason.
func TestNodeLimitFlag(t *testing.T) {
	b := runBackground(t, "node", "--name", "n1", "--listen", "127.0.0.1:0", "--gossip", "off", "--console", "off",
		"--limit", "handshaking-per-host=2")
	re := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	nodetest.WaitFor(t, 10*time.Second, func() error {
		m := re.FindStringSubmatch(b.err.String())
		if m == nil {
			return fmt.Errorf("no listening line yet: %s", b.err.String())
		}
		addr = m[1]
		return nil
	})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	nodetest.WaitFor(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, _ := io.ReadAll(c)
		if !strings.Contains(string(got), "too many connections in their handshake (at most 1024, 2 from one host)") {
			return fmt.Errorf("a third connection read %q", got)
		}
		return nil
	})
	b.stop(t)
}
