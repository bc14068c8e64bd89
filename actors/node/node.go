// Package node wires a netsvc process together: the service runtime
// (its kernel: registry and services) and one exchange per exchange group
// it takes part in, with the node's limits shared by them. Gossip
// discovery (Mesh, over package cluster) and the console (package
// actors/console) are started beside it by the program, as the netsvc
// command does. Numbered rules cited in comments are those of package
// actors.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// Config configures a node.
type Config struct {
	// Name is the node's name in bindings, links and the console.
	Name string
	// Exchanges are the node's exchange endpoints, one per exchange
	// group. A node with none runs services in-process only; a process
	// with endpoints in two groups is a bridge (rule 5).
	Exchanges []exchange.Config
	// Runtime tunes the service runtime (call timeout, payload limit).
	// Its Node and Logger fields are taken from Name and Logger.
	Runtime service.Config
	// Limits bound what peers can make the node hold across all its
	// links and exchanges (rule 36); zero fields take the defaults.
	// Each exchange's Link config bounds each of its links.
	Limits connection.Limits
	// Logger receives the node's logs; nil is quiet.
	Logger *slog.Logger
}

// Server returns the exchange config of a server endpoint.
func Server(group, listen string, connect ...string) exchange.Config {
	return exchange.Config{Group: group, Role: registry.RoleServer, Listen: listen, Connect: connect}
}

// Client returns the exchange config of a client endpoint linked to one
// of servers: the first it can reach and that accepts it, trying the
// others in turn when that one goes or refuses (a client is never
// linked to two servers at once).
func Client(group string, servers ...string) exchange.Config {
	return exchange.Config{Group: group, Role: registry.RoleClient, Connect: servers}
}

// Node is a running process: runtime plus exchanges.
type Node struct {
	rt        *service.Runtime
	budget    *connection.Budget
	exchanges []*exchange.Exchange
	log       *slog.Logger
	stopOnce  sync.Once
	stopErr   error
}

// Start starts the runtime and the exchanges.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	rc := cfg.Runtime
	rc.Node = cfg.Name
	rc.Logger = cfg.Logger
	rt, err := service.NewRuntime(rc)
	if err != nil {
		return nil, err
	}
	n := &Node{rt: rt, log: rt.Logger(), budget: connection.NewBudget(cfg.Limits)}
	seen := map[string]bool{}
	for _, xc := range cfg.Exchanges {
		if seen[xc.Group] {
			n.Stop(ctx)
			return nil, fmt.Errorf("node %s: two exchanges for group %q: one per group", cfg.Name, xc.Group)
		}
		seen[xc.Group] = true
		if xc.Logger == nil {
			xc.Logger = cfg.Logger
		}
		if xc.Budget == nil {
			xc.Budget = n.budget
		}
		x, err := exchange.Start(rt.Kernel(), xc)
		if err != nil {
			n.Stop(ctx)
			return nil, err
		}
		n.exchanges = append(n.exchanges, x)
	}
	return n, nil
}

// Runtime returns the node's service runtime.
func (n *Node) Runtime() *service.Runtime { return n.rt }

// Budget returns the accounting of the node's Limits.
func (n *Node) Budget() *connection.Budget { return n.budget }

// Kernel returns the kernel under the node's runtime: its registry,
// routing and introspection, for the console and tools.
func (n *Node) Kernel() *registry.Kernel { return n.rt.Kernel() }

// Exchanges returns the node's exchanges.
func (n *Node) Exchanges() []*exchange.Exchange { return n.exchanges }

// Exchange returns the exchange of a group, or nil.
func (n *Node) Exchange(group string) *exchange.Exchange {
	for _, x := range n.exchanges {
		if x.Group() == group {
			return x
		}
	}
	return nil
}

// Addr returns the listen address of the first listening exchange.
func (n *Node) Addr() string {
	for _, x := range n.exchanges {
		if a := x.Addr(); a != "" {
			return a
		}
	}
	return ""
}

// Links returns the links of every exchange.
func (n *Node) Links() []exchange.LinkStatus {
	var out []exchange.LinkStatus
	for _, x := range n.exchanges {
		out = append(out, x.Links()...)
	}
	return out
}

// WaitSynced waits until at least one link is up and everything its peer
// announced at link-up is in this node's registry: a client process can
// then look services up and trust the answer.
func (n *Node) WaitSynced(ctx context.Context) error {
	synced := make(chan struct{}, 1)
	for _, x := range n.exchanges {
		cancel := x.WatchLinks(func(ev exchange.LinkEvent) {
			if ev.Synced {
				select {
				case synced <- struct{}{}:
				default:
				}
			}
		})
		defer cancel()
	}
	for _, l := range n.Links() {
		if l.Synced {
			return nil
		}
	}
	select {
	case <-synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no link to a server came up: %w", ctx.Err())
	}
}

// Stop says bye on every link (so peers withdraw this node's services at
// once), stops the services and the runtime.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopErr = n.stop(ctx) })
	return n.stopErr
}

func (n *Node) stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	var errs []error
	for _, x := range n.exchanges {
		if err := x.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop exchange %s: %w", x.Group(), err))
		}
	}
	if err := n.rt.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
