package node_test

// Supervision: what a panic in a handler does, seen from another
// process.

import (
	"fmt"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// counter is a service whose state is a count; boom panics halfway
// through an update.
func counter(generation *int) service.SetupFunc {
	return func(a *service.Agent) error {
		*generation++
		gen := *generation
		count := 0
		a.Export("inc", func() int { count++; return count })
		a.Export("boom", func() int {
			count = -1000 // halfway through an update
			panic("boom")
		})
		a.Export("get", func() int { return count })
		return a.PublishRetained("generation", gen, service.Forever)
	}
}

func callInt(t *testing.T, p *proc, to service.Target, method string) (int, error) {
	return service.CallFor[int](ctxFor(t, waitLong), p.rt(), to, method)
}

func mustCallInt(t *testing.T, p *proc, to service.Target, method string) int {
	t.Helper()
	v, err := callInt(t, p, to, method)
	if err != nil {
		t.Fatalf("%s: %v.%s: %v", p.name, to, method, err)
	}
	return v
}

func restartsOf(p *proc, name string) uint64 {
	for _, s := range p.rt().Kernel().Stats().Services {
		if s.Name == name {
			return s.Restarts
		}
	}
	return 0
}

// TestRestartOnPanic: the service restarts with fresh state at the same
// address, never withdrawn; its kept report is the new state's; the
// console's tree shows the restart; past the intensity it stops.
func TestRestartOnPanic(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	host := startNode(t, "host", clientX("", x.Addr()))
	caller := startNode(t, "caller", clientX("", x.Addr()))
	generation := 0
	addr := startService(t, host, "counter", counter(&generation), service.OnPanic(service.RestartOnPanic))
	visible(t, caller, "counter", 1)
	events := watch(t, caller, service.Name("counter"))
	target := service.Name("counter")

	for range 3 {
		mustCallInt(t, caller, target, "inc")
	}
	firstPanic := time.Now()
	if _, err := callInt(t, caller, target, "boom"); failureCode(err) != service.CodeHandlerError {
		t.Fatalf("the panicking call: %v, want handler error", err)
	}
	if got := mustCallInt(t, caller, addr, "get"); got != 0 {
		t.Fatalf("count after the restart = %d, want 0 (fresh state)", got)
	}
	if generation != 2 {
		t.Fatalf("Setup ran %d times, want 2", generation)
	}
	if events.has(service.Withdrawn, "counter") {
		t.Fatalf("the restart was seen as a withdrawal: %v", events.all())
	}
	// A subscriber arriving now gets the new state's kept report only.
	reports := make(chan int, 4)
	startService(t, caller, "", func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("counter"), "generation", func(r service.Report) {
			var g int
			if err := r.Payload.Decode(&g); err == nil {
				reports <- g
			}
		})
		return err
	})
	if g := recv(t, reports, waitLong, "the kept report"); g != 2 {
		t.Fatalf("the kept report after the restart says generation %d, want 2", g)
	}
	// The console's tree shows it.
	nodetest.WaitFor(t, waitLong, func() error {
		for _, a := range host.rt().Kernel().Tree().Snapshot() {
			if a.Kind == registry.KindService && a.Name == "counter" {
				if n, _ := a.Detail["restarts"].(uint64); n == 1 {
					return nil
				}
				return fmt.Errorf("the tree shows %v", a.Detail)
			}
		}
		return fmt.Errorf("no counter in the tree")
	})

	// Three restarts within 5 s are allowed; the next panic stops it.
	const maxRestarts, restartWindow = 3, 5 * time.Second
	for i := 2; i <= maxRestarts; i++ {
		callInt(t, caller, target, "boom")
		// Counted once the handler has returned, after its failure went.
		nodetest.WaitFor(t, waitLong, func() error {
			if n := restartsOf(host, "counter"); n != uint64(i) {
				return fmt.Errorf("after panic %d: %d restarts", i, n)
			}
			return nil
		})
	}
	if time.Since(firstPanic) > restartWindow-time.Second {
		t.Skip("the machine is too slow to panic four times within the restart window")
	}
	callInt(t, caller, target, "boom")
	events.waitFor(t, service.Withdrawn, "counter")
	if _, err := callInt(t, caller, addr, "get"); failureCode(err) != service.CodeNoSuchService {
		t.Fatalf("after too many restarts: %v, want no such service", err)
	}
}

// TestStopOnPanic and the default, resume.
func TestStopOrResumeOnPanic(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	host := startNode(t, "host", clientX("", x.Addr()))
	caller := startNode(t, "caller", clientX("", x.Addr()))
	var g1, g2 int
	startService(t, host, "resumes", counter(&g1))
	startService(t, host, "stops", counter(&g2), service.OnPanic(service.StopOnPanic))
	visible(t, caller, "resumes", 1)
	visible(t, caller, "stops", 1)

	mustCallInt(t, caller, service.Name("resumes"), "inc")
	callInt(t, caller, service.Name("resumes"), "boom")
	if got := mustCallInt(t, caller, service.Name("resumes"), "get"); got != -1000 || g1 != 1 {
		t.Fatalf("resumed service: count %d, setup ran %d times; want the state the panic left (-1000), once", got, g1)
	}
	stops := watch(t, caller, service.Name("stops"))
	if _, err := callInt(t, caller, service.Name("stops"), "boom"); failureCode(err) != service.CodeHandlerError {
		t.Fatalf("the panicking call: %v, want handler error", err)
	}
	stops.waitFor(t, service.Withdrawn, "stops")
	visible(t, caller, "stops", 0)
}
