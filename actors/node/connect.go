package node

import (
	"context"
	"fmt"
)

// Connect starts a client process linked to one of cfg.Servers (the
// first that accepts it; the others are fallbacks it moves to when that
// one goes or drains) and returns once its registry is synced: every
// service the cluster shows it can be looked up and called. It fails,
// stopping what it started, when no server accepts it before ctx ends.
func Connect(ctx context.Context, cfg Config) (*Node, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("node %s: Connect needs Servers to link to", cfg.Name)
	}
	n, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := n.WaitSynced(ctx); err != nil {
		n.shutdown(context.Background())
		return nil, fmt.Errorf("node %s: linking to %v: %w", cfg.Name, cfg.Servers, err)
	}
	return n, nil
}
