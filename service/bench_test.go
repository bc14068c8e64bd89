package service_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/service"
)

type rawMultiply struct{ x, y int }

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

// rawRoundTrip is the baseline: a RequestFuture from a plain goroutine to
// a plain protoactor actor that multiplies, with protoactor's defaults.
func rawRoundTrip(b *testing.B) func() {
	sys := quietSystem()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*rawMultiply); ok {
			c.Respond(m.x * m.y)
		}
	}))
	b.Cleanup(func() { sys.Root.Stop(pid) })
	return func() {
		res, err := sys.Root.RequestFuture(pid, &rawMultiply{6, 7}, 5*time.Second).Result()
		if err != nil || res.(int) != 42 {
			b.Fatal(res, err)
		}
	}
}

// apiRoundTrip is the same round trip through the service API: encode,
// route by name, decode and call the handler, encode the result, decode it.
func apiRoundTrip(b *testing.B) func() {
	ctx := context.Background()
	rt := newBenchRuntime(b)
	var v int
	return func() {
		res, err := rt.Call(ctx, service.Name("math"), "multiply", 6, 7)
		if err == nil {
			err = res.Decode(&v)
		}
		if err != nil || v != 42 {
			b.Fatal(v, err)
		}
	}
}

func BenchmarkRoundTripRaw(b *testing.B) {
	f := rawRoundTrip(b)
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

func BenchmarkRoundTripServiceAPI(b *testing.B) {
	f := apiRoundTrip(b)
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

// BenchmarkRoundTripRatio runs both round trips alternately in one loop,
// so both see the same machine state, and reports the service API's rate
// as a fraction of the raw one (target ≥ 0.7).
func BenchmarkRoundTripRatio(b *testing.B) {
	raw, api := rawRoundTrip(b), apiRoundTrip(b)
	var rawT, apiT time.Duration
	for b.Loop() {
		t0 := time.Now()
		raw()
		t1 := time.Now()
		api()
		apiT += time.Since(t1)
		rawT += t1.Sub(t0)
	}
	b.ReportMetric(float64(rawT.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(apiT.Nanoseconds())/float64(b.N), "api-ns/op")
	b.ReportMetric(float64(rawT)/float64(apiT), "api/raw-rate")
}

func newBenchRuntime(b *testing.B) *service.Runtime {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(ctx) })
	if _, err := rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	})); err != nil {
		b.Fatal(err)
	}
	return rt
}

// BenchmarkPublishSubscribe measures publish → subscriber throughput
// inside one process: a publisher service publishes b.N 100-byte reports
// to one subscriber service, which counts them; reports/s is the rate at
// which the subscriber handled them.
func BenchmarkPublishSubscribe(b *testing.B) {
	ctx := context.Background()
	// A queue limit above the whole run: this measures throughput, not
	// the shedding a slow subscriber meets.
	rt, err := service.NewRuntime(service.Config{ServiceQueueLimit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(ctx) })
	subscribed := make(chan struct{})
	done := make(chan struct{})
	var payload any = service.Raw{Data: make([]byte, 100)}
	n := b.N
	if _, err := rt.Start(ctx, "pub", service.SetupFunc(func(a *service.Agent) error {
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed {
				close(subscribed)
			}
		})
		a.Export("go", func() {
			for i := 0; i < n; i++ {
				_ = a.Publish("tick", payload)
			}
		})
		return nil
	})); err != nil {
		b.Fatal(err)
	}
	got := 0
	if _, err := rt.Start(ctx, "sub", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("pub"), "tick", func(service.Report) {
			if got++; got == n {
				close(done)
			}
		})
		return err
	})); err != nil {
		b.Fatal(err)
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		b.Fatal("never subscribed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if _, err := rt.Call(ctx, service.Name("pub"), "go"); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d", got, n)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "reports/s")
}
