package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// heapPeak samples the Go heap in use until stop is called and returns
// the highest figure seen. Sampling can miss a short peak, so it is
// only good for upper bounds: what it reports was really in use.
func heapPeak() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		over = make(chan struct{})
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(over)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-over
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// startSingle starts a node without links, with the math service.
func startSingle(t testing.TB, cfg service.Config) *testNode {
	t.Helper()
	ctx := context.Background()
	n, err := startTestNode("single", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(n) })
	if _, err := n.Runtime().Start(ctx, "math", mathService()); err != nil {
		t.Fatal(err)
	}
	return n
}

// A body of small numbers as big as the gateway takes costs the heap a
// small multiple of its size, not the generic values it spells out.
func TestGatewayMemoryBounded(t *testing.T) {
	n := startSingle(t, service.Config{})
	c := startConsole(t, Config{Node: n})
	limit := n.Runtime().Kernel().MaxPayload()
	body := "[" + strings.Repeat("1,", (limit-2)/2-1) + "1]"
	if len(body) > limit {
		t.Fatalf("body %d over %d", len(body), limit)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := heapPeak()
	r := do(t, http.MethodPost, c.URL()+"rpc/math/multiply", body)
	peak := stop()
	// The service refuses 8 million arguments; what matters is the cost.
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "expected 2 arguments") {
		t.Errorf("got %.200s", r)
	}
	grew := int64(peak) - int64(base)
	t.Logf("body %d bytes: heap in use grew by %d bytes (%.1f× the body)", len(body), grew, float64(grew)/float64(len(body)))
	if grew > 4*int64(len(body)) {
		t.Errorf("heap grew by %d bytes for a body of %d: over 4× the body", grew, len(body))
	}
}

// gateService exports wait, whose handler blocks until release closes.
func gateService(release <-chan struct{}) service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("wait", func() int {
			<-release
			return 1
		})
		return nil
	})
}

// Calls past GatewayMaxInFlight are answered 503 at once, while the
// calls in flight go on and complete.
func TestGatewayInFlightLimit(t *testing.T) {
	n := startSingle(t, service.Config{})
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before the node stops (cleanups run last first)
	if _, err := n.Runtime().Start(context.Background(), "gate", gateService(release)); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, Config{Node: n}) // the default: 8 at once
	const limit = DefaultGatewayMaxInFlight
	results := make(chan response, limit)
	for range limit {
		go func() { results <- do(t, http.MethodPost, c.URL()+"rpc/gate/wait", "[]") }()
	}
	waitFor(t, 10*time.Second, func() error {
		if p := n.Runtime().Kernel().Stats().Pending; p != limit {
			return errTest("pending calls: " + strconv.Itoa(p))
		}
		return nil
	})
	// Full: more calls are refused at once (a timeout would answer 504,
	// not 503, if they waited).
	for range 2 {
		r := do(t, http.MethodPost, c.URL()+"rpc/gate/wait?timeout=2s", "[]")
		var f FailureBody
		r.decode(t, &f)
		if r.status != http.StatusServiceUnavailable || f.Code != service.CodeOverloaded || f.Origin != OriginConsole ||
			r.header.Get("Retry-After") == "" || !strings.Contains(f.Details, "busy") {
			t.Errorf("past the limit: got %s (Retry-After %q)", r, r.header.Get("Retry-After"))
		}
	}
	open()
	for range limit {
		if r := <-results; r.status != 200 || string(r.body) != "1" {
			t.Errorf("a call in flight: got %s", r)
		}
	}
	// The slots are free again.
	if r := do(t, http.MethodPost, c.URL()+"rpc/gate/wait", "[]"); r.status != 200 {
		t.Errorf("after: got %s", r)
	}
	wantMetric(t, c, `netsvc_gateway_rejected_total{reason="busy"} 2`)
}

// wantMetric fails unless /metrics has the line.
func wantMetric(t *testing.T, c *Console, line string) {
	t.Helper()
	r := get(t, c.URL()+"metrics")
	if r.status != 200 || !slices.Contains(strings.Split(string(r.body), "\n"), line) {
		t.Errorf("no %q in the metrics:\n%s", line, grepLines(string(r.body), "netsvc_gateway_rejected|netsvc_console_auth"))
	}
}

func grepLines(s, re string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if regexp.MustCompile(re).MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// GatewayMaxBody bounds the body, whether it says its length or not.
func TestGatewayMaxBody(t *testing.T) {
	n := startSingle(t, service.Config{})
	c := startConsole(t, Config{Node: n, GatewayMaxBody: 100})
	ok := `["` + strings.Repeat("x", 96) + `"]` // 100 bytes
	if r := do(t, http.MethodPost, c.URL()+"rpc/math/echo", ok); r.status != 200 {
		t.Errorf("at the limit: %s", r)
	}
	over := `["` + strings.Repeat("x", 97) + `"]`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(over)
		if chunked {
			body = io.MultiReader(body) // no length known: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, c.URL()+"rpc/math/echo", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var f FailureBody
		json.Unmarshal(b, &f)
		if resp.StatusCode != 413 || f.Code != service.CodePayloadTooLarge || !strings.Contains(f.Details, "limit of 100 bytes") {
			t.Errorf("over the limit (chunked %v): %d %s", chunked, resp.StatusCode, b)
		}
	}
	// Too deep is bad arguments.
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	c2 := startConsole(t, Config{Node: n})
	r := do(t, http.MethodPost, c2.URL()+"rpc/math/echo", deep)
	var f FailureBody
	r.decode(t, &f)
	if r.status != 400 || f.Code != service.CodeBadArguments || !strings.Contains(f.Details, "64 levels") {
		t.Errorf("too deep: %s", r)
	}
	wantMetric(t, c, `netsvc_gateway_rejected_total{reason="too_large"} 2`)
	wantMetric(t, c2, `netsvc_gateway_rejected_total{reason="bad_arguments"} 1`)
}

// A large result is written as PayloadJSON writes it, at a small cost
// in memory: not as generic values first.
func TestGatewayLargeResult(t *testing.T) {
	items := make([]any, 100000)
	for i := range items {
		items[i] = map[string]any{"i": i, "s": "a\u2028<&>", "f": 0.5, "b": []any{true, nil, []byte{1, 2}}}
	}
	p, err := service.Encode(items)
	if err != nil {
		t.Fatal(err)
	}
	want, err := registry.PayloadJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	items = nil
	n := startSingle(t, service.Config{})
	if _, err := n.Runtime().Start(context.Background(), "big", service.SetupFunc(func(a *service.Agent) error {
		a.Export("get", func() service.Raw { return service.Raw{ContentType: service.ContentCBOR, Data: p.Data} })
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, Config{Node: n})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := heapPeak()
	resp, err := client.Post(c.URL()+"rpc/big/get", "application/json", strings.NewReader("[]"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Compare as it comes, keeping none of it.
	got, same := 0, true
	buf := make([]byte, 32<<10)
	for {
		m, err := resp.Body.Read(buf)
		if same && (got+m > len(want) || !bytes.Equal(buf[:m], want[got:got+m])) {
			same = false
		}
		got += m
		if err != nil {
			break
		}
	}
	peak := stop()
	if resp.StatusCode != 200 || !same || got != len(want) {
		t.Errorf("got %d, %d bytes (same as PayloadJSON so far: %v), want %d bytes", resp.StatusCode, got, same, len(want))
	}
	grew := int64(peak) - int64(base)
	t.Logf("result %d bytes of CBOR, %d of JSON: heap in use grew by %d bytes", len(p.Data), len(want), grew)
	if grew > 4*int64(len(p.Data)) {
		t.Errorf("heap grew by %d bytes for a result of %d: over 4× the result", grew, len(p.Data))
	}
}
