package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts a server node on a free loopback port, with the
// demo services when demo is set, and stops it when the test ends.
func startServer(t testing.TB, name, group string, demo bool) *node.Node {
	t.Helper()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Name: name, Exchanges: []exchange.Config{node.Server(group, "127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	if demo {
		if err := startDemo(ctx, n.Runtime(), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// result is what a run of the command did.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout: %s\nstderr: %s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runCmd runs the command in-process and waits for it.
func runCmd(ctx context.Context, args ...string) result {
	var out, errb syncBuffer
	start := time.Now()
	code := run(ctx, args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
}

// background runs the command in a goroutine; stop cancels it and
// returns what it did.
type background struct {
	cancel   context.CancelFunc
	done     chan struct{}
	code     int
	out, err syncBuffer
}

func runBackground(t testing.TB, args ...string) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.code = run(ctx, args, &b.out, &b.err)
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// wait waits for the command to end by itself.
func (b *background) wait(t testing.TB, d time.Duration) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(d):
		t.Fatalf("command still running after %v; stderr: %s", d, b.err.String())
	}
	return result{code: b.code, stdout: b.out.String(), stderr: b.err.String()}
}

// stop interrupts the command and waits for it.
func (b *background) stop(t testing.TB) result {
	t.Helper()
	b.cancel()
	return b.wait(t, 15*time.Second)
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
