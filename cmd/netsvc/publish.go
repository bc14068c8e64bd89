package main

// "netsvc publish": a report published as a named service, kept for late
// subscribers with --lifetime.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

type publishFlags struct {
	clientFlags
	as       string
	lifetime time.Duration
	wait     time.Duration
	require  bool
}

// publishSettle is how long a publisher waits after a subscription
// arrives for more to come before it publishes: subscribers elsewhere
// hear of the new publisher at about the same time.
const publishSettle = 100 * time.Millisecond

func publishCommand() *command {
	return &command{
		name:    "publish",
		summary: "publish a report as a service and exit once sent (with --lifetime, keep serving it)",
		usage:   "--server HOST:PORT [--group NAME] --as SERVICE SUBJECT JSON [--lifetime D] [--wait D] [--require-subscriber]",
		flags: func(fs *flag.FlagSet) any {
			c := &publishFlags{}
			c.register(fs, "give up linking to the server after this long")
			fs.StringVar(&c.as, "as", "", "publish as a service named `SERVICE` (required)")
			fs.DurationVar(&c.lifetime, "lifetime", 0, "keep the report this long for late subscribers, serving it until then or an interrupt; negative: until interrupted")
			fs.DurationVar(&c.wait, "wait", time.Second, "without --lifetime: wait up to this long for subscribers to subscribe before publishing")
			fs.BoolVar(&c.require, "require-subscriber", false, "without --lifetime: fail (exit 1) when nobody subscribed within --wait")
			return c
		},
		run: runPublish,
	}
}

type published struct {
	err         error
	subscribers int
}

func runPublish(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*publishFlags)
	if len(env.args) != 2 {
		return env.usageError("want SUBJECT JSON")
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	if cfg.as == "" {
		return env.usageError("--as SERVICE is required")
	}
	if cfg.wait < 0 {
		return env.usageError("--wait must not be negative, got %v", cfg.wait)
	}
	subject := env.args[0]
	if _, err := service.CompilePattern(subject); err != nil || subject == "" {
		return env.usageError("bad subject %q", subject)
	}
	value, err := parseJSONArg(env.args[1])
	if err != nil {
		return env.usageError("the report value: %v", err)
	}
	lifetime := cfg.lifetime
	if lifetime < 0 {
		lifetime = service.Forever
	}

	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "publish", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	sent := make(chan published, 1)
	_, err = n.Runtime().Start(ctx, cfg.as, publisher(subject, value, lifetime, cfg.wait, sent))
	if err != nil {
		return env.fail(err)
	}
	var res published
	select {
	case res = <-sent:
	case <-ctx.Done():
		return env.fail(errors.New("interrupted before the report was sent"))
	}
	if res.err != nil {
		return env.fail(res.err)
	}
	if lifetime == 0 {
		if res.subscribers == 0 && cfg.require {
			return env.fail(fmt.Errorf("nobody subscribed to %s within %v (--require-subscriber)", subject, cfg.wait))
		}
		// Stop does not wait for queued frames: let the link write them.
		if err := drainLinks(ctx, n, 5*time.Second); err != nil {
			return env.fail(err)
		}
		// Subscriptions whose pattern matched, each of which got it.
		switch res.subscribers {
		case 0:
			fmt.Fprintf(env.stdout, "published %s to nobody: no subscription matched within %v\n", subject, cfg.wait)
		case 1:
			fmt.Fprintf(env.stdout, "published %s to 1 subscription\n", subject)
		default:
			fmt.Fprintf(env.stdout, "published %s to %d subscriptions\n", subject, res.subscribers)
		}
		return exitOK
	}
	until := "until interrupted"
	var expired <-chan time.Time
	if lifetime > 0 {
		until = fmt.Sprintf("for %v or until interrupted", lifetime)
		t := time.NewTimer(lifetime)
		defer t.Stop()
		expired = t.C
	}
	fmt.Fprintf(env.stderr, "netsvc publish: %s keeps %s for new subscribers %s\n", cfg.as, subject, until)
	select {
	case <-expired:
	case <-ctx.Done():
	}
	return exitOK
}

// publisher is the service that publishes once. Without a lifetime it
// waits up to wait for subscriptions whose pattern matches the subject
// (publishing publishSettle after the latest); with one it publishes at
// once, since the report is kept for whoever subscribes later.
func publisher(subject string, value any, lifetime, wait time.Duration, sent chan<- published) service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		var settle, deadline *service.Timer
		done, matched := false, 0
		publish := func() {
			if done {
				return
			}
			done = true
			settle.Stop()
			deadline.Stop()
			sent <- published{err: a.PublishRetained(subject, value, lifetime), subscribers: matched}
		}
		if lifetime != 0 {
			publish()
			return nil
		}
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if !ev.Subscribed || done {
				return
			}
			if p, err := service.CompilePattern(ev.Pattern); err == nil && p.Match(subject) {
				matched++
				settle.Stop()
				settle = a.After(publishSettle, publish)
			}
		})
		deadline = a.After(wait, publish)
		return nil
	})
}

// drainLinks waits until nothing is queued on the node's links.
func drainLinks(ctx context.Context, n *node.Node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		queued := int64(0)
		for _, l := range n.Links() {
			queued += l.Queued
		}
		if queued == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the report is still queued after %v (%d bytes waiting)", limit, queued)
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted before the report was sent")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
