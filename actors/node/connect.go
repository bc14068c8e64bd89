package node

// A client process in one call, and why a server refused it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Connect starts a client process linked to one of cfg.Servers (the
// first that accepts it; the others are fallbacks it moves to when that
// one goes or drains) and returns once its registry is synced: every
// service the cluster shows it can be looked up and called. It fails,
// stopping what it started, when a server refuses it (token, group, TLS,
// protocol version: see Refused) or none accepts it before ctx ends.
func Connect(ctx context.Context, cfg Config) (*Node, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("node %s: Connect needs Servers to link to", cfg.Name)
	}
	n, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := n.waitLinked(ctx); err != nil {
		n.shutdown(context.Background())
		return nil, fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	return n, nil
}

// waitLinked is WaitSynced that gives up at once when a server refuses
// this node.
func (n *Node) waitLinked(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := n.Refused(); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	err := n.WaitSynced(ctx)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, ctx.Err()) {
		return cause
	}
	if err != nil {
		if last := n.lastDialError(); last != "" {
			return fmt.Errorf("%w (last: %s)", err, last)
		}
	}
	return err
}

// Refused reports why a peer refused to link with this node, or this
// node refused the peer's hello — another exchange group, a token
// neither proves, another protocol version, a TLS certificate that does
// not verify — for the first such dial target; nil when there is none.
// Retrying cannot help until someone changes a configuration: Start
// keeps retrying with a doubling delay (rule 11), Connect gives up.
func (n *Node) Refused() error {
	for _, x := range n.exchanges {
		for _, t := range x.Targets() {
			if t.State == "rejected" && strings.HasPrefix(t.LastErr, "TLS ") {
				return fmt.Errorf("cannot link to %s: %s", t.Address, t.LastErr)
			}
			if t.State == "rejected" {
				// Either side may find the mismatch first: the same
				// words either way.
				reason := strings.TrimPrefix(strings.TrimPrefix(t.LastErr, "rejected by peer: "), refusedPrefix)
				return fmt.Errorf("%s refused the link: %s", t.Address, reason)
			}
			if reason, ok := strings.CutPrefix(t.LastErr, refusedPrefix); ok {
				return fmt.Errorf("cannot link to %s: %s", t.Address, reason)
			}
		}
	}
	return nil
}

// refusedPrefix starts the reason of a link whose peer's hello this
// side refused (actors/connection).
const refusedPrefix = "refused peer: "

// lastDialError is the last error of any dial target, "" for none.
func (n *Node) lastDialError() string {
	for _, x := range n.exchanges {
		for _, t := range x.Targets() {
			if t.LastErr != "" {
				return t.LastErr
			}
		}
	}
	return ""
}
