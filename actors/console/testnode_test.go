package console

// A node for the console's own tests: package actors/node starts a
// console, so these tests cannot import it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// testNode is a runtime and its exchanges: what a console shows.
type testNode struct {
	rt        *service.Runtime
	exchanges []*exchange.Exchange
	budget    *connection.Budget
}

func serverEndpoint(listen string) exchange.Config {
	return exchange.Config{Role: registry.RoleServer, Listen: listen}
}

func clientEndpoint(servers ...string) exchange.Config {
	return exchange.Config{Role: registry.RoleClient, Connect: servers}
}

// startTestNode starts a runtime named name with the given endpoints.
func startTestNode(name string, rc service.Config, endpoints ...exchange.Config) (*testNode, error) {
	rc.Node = name
	rt, err := service.NewRuntime(rc)
	if err != nil {
		return nil, err
	}
	n := &testNode{rt: rt, budget: connection.NewBudget(connection.Limits{})}
	for _, xc := range endpoints {
		xc.Budget = n.budget
		x, err := exchange.Start(rt.Kernel(), xc)
		if err != nil {
			n.Stop(context.Background())
			return nil, err
		}
		n.exchanges = append(n.exchanges, x)
	}
	return n, nil
}

func (n *testNode) Runtime() *service.Runtime       { return n.rt }
func (n *testNode) Exchanges() []*exchange.Exchange { return n.exchanges }
func (n *testNode) Budget() *connection.Budget      { return n.budget }

func (n *testNode) Links() []exchange.LinkStatus {
	var out []exchange.LinkStatus
	for _, x := range n.exchanges {
		out = append(out, x.Links()...)
	}
	return out
}

func (n *testNode) Addr() string {
	for _, x := range n.exchanges {
		if a := x.Addr(); a != "" {
			return a
		}
	}
	return ""
}

// WaitSynced waits until a link is up and synced.
func (n *testNode) WaitSynced(ctx context.Context) error {
	for {
		for _, l := range n.Links() {
			if l.Synced {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no link synced: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *testNode) Stop(ctx context.Context) error {
	var errs []error
	for _, x := range n.exchanges {
		errs = append(errs, x.Stop(ctx))
	}
	errs = append(errs, n.rt.Close(ctx))
	return errors.Join(errs...)
}
