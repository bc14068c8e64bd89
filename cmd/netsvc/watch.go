package main

// "netsvc watch": registry changes as a node's clients see them, as JSON
// lines, until interrupted.

import (
	"context"
	"encoding/json"
	"flag"
	"strings"

	"github.com/netsvc-go/netsvc/service"
)

type watchFlags struct {
	clientFlags
	count int
}

func watchCommand() *command {
	return &command{
		name:    "watch",
		summary: "print registry changes (services available, withdrawn, joining and leaving groups) as JSON lines",
		usage:   "--server HOST:PORT [--group NAME] [--count N] [SERVICE | group:GROUP]  (default: every service)",
		flags: func(fs *flag.FlagSet) any {
			c := &watchFlags{}
			c.register(fs, "give up linking to the server after this long")
			fs.IntVar(&c.count, "count", 0, "exit after `N` changes, those that exist at start included (0: until interrupted)")
			return c
		},
		run: runWatch,
	}
}

// watchLine is one line watch prints.
type watchLine struct {
	Kind    string            `json:"kind"` // available, withdrawn, joined, left
	Name    string            `json:"name"`
	Address service.Address   `json:"address"`
	Node    string            `json:"node"`
	Group   string            `json:"group,omitempty"`
	Process service.ProcessID `json:"process"`
}

func runWatch(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*watchFlags)
	if len(env.args) > 1 {
		return env.usageError("want at most one SERVICE or group:GROUP")
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	if cfg.count < 0 {
		return env.usageError("--count must not be negative, got %d", cfg.count)
	}
	var target service.Target = service.AllServices
	if len(env.args) == 1 {
		if g, ok := strings.CutPrefix(env.args[0], "group:"); ok && g != "" {
			target = service.Group(g)
		} else {
			target = service.Name(env.args[0])
		}
	}
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "watch", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	events := make(chan service.RegistryEvent, 256)
	quit := make(chan struct{})
	defer close(quit)
	w, err := n.Runtime().Watch(ctx, target, func(ev service.RegistryEvent) {
		select {
		case events <- ev:
		case <-quit:
		}
	})
	if err != nil {
		return env.fail(err)
	}
	defer w.Cancel()
	enc := json.NewEncoder(env.stdout)
	for seen := 0; cfg.count == 0 || seen < cfg.count; seen++ {
		select {
		case <-ctx.Done():
			return exitOK
		case ev := <-events:
			b := ev.Binding
			if err := enc.Encode(watchLine{Kind: ev.Kind.String(), Name: b.Name, Address: b.Address, Node: b.Node,
				Group: ev.Group, Process: b.Address.Process}); err != nil {
				return env.fail(err)
			}
		}
	}
	return exitOK
}
