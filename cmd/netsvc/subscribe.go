package main

// "netsvc subscribe": a service's reports as JSON lines.

import (
	"context"
	"flag"
	"fmt"

	"github.com/netsvc-go/netsvc/service"
)

type subscribeFlags struct {
	clientFlags
	count int
}

func subscribeCommand() *command {
	return &command{
		name:    "subscribe",
		summary: "print the reports of a service as JSON lines until interrupted",
		usage:   "--server HOST:PORT [--group NAME] [--count N] SERVICE [SUBJECT-PATTERN]  (default '>', every subject)",
		flags: func(fs *flag.FlagSet) any {
			c := &subscribeFlags{}
			c.register(fs, "give up linking to the server after this long")
			fs.IntVar(&c.count, "count", 0, "exit after `N` reports (0: until interrupted)")
			return c
		},
		run: runSubscribe,
	}
}

// reportLine is one line subscribe prints.
type reportLine struct {
	Publisher string          `json:"publisher"`
	Address   service.Address `json:"address"`
	Subject   string          `json:"subject"`
	Pattern   string          `json:"pattern"`
	Value     any             `json:"value"`
}

func runSubscribe(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*subscribeFlags)
	if len(env.args) == 1 {
		env.args = append(env.args, ">") // every subject
	}
	if len(env.args) != 2 {
		return env.usageError("want SERVICE [SUBJECT-PATTERN]")
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	if cfg.count < 0 {
		return env.usageError("--count must not be negative, got %d", cfg.count)
	}
	name, pattern := env.args[0], env.args[1]
	if _, err := service.CompilePattern(pattern); err != nil {
		return env.usageError("%v", err)
	}
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "subscribe", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	if len(n.Runtime().Lookup(name)) == 0 {
		// Not an error: a subscription waits for its publisher. But a
		// silent wait on a misspelt name looks like a hang.
		fmt.Fprintf(env.stderr, "netsvc subscribe: no service named %q yet; waiting for it\n", name)
	}

	reports := make(chan service.Report, 256)
	quit := make(chan struct{}) // closed once nobody reads reports
	defer close(quit)
	_, err = n.Runtime().Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name(name), pattern, func(r service.Report) {
			select {
			case reports <- r:
			case <-quit:
			}
		})
		return err
	}))
	if err != nil {
		return env.fail(err)
	}
	for got := 0; cfg.count == 0 || got < cfg.count; got++ {
		var r service.Report
		select {
		case r = <-reports:
		case <-ctx.Done():
			return exitOK
		}
		v, err := payloadValue(r.Payload)
		if err != nil {
			return env.fail(fmt.Errorf("report %s from %s: %w", r.Subject, r.Publisher, err))
		}
		b, err := marshalJSON(reportLine{Publisher: r.PublisherName, Address: r.Publisher, Subject: r.Subject, Pattern: r.Pattern, Value: v})
		if err != nil {
			return env.fail(fmt.Errorf("report %s from %s: %w", r.Subject, r.Publisher, err))
		}
		if _, err := fmt.Fprintf(env.stdout, "%s\n", b); err != nil {
			return env.fail(err) // e.g. a closed pipe
		}
	}
	return exitOK
}
