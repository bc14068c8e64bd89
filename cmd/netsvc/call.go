package main

// "netsvc call": one call through a node, the JSON result on stdout, a
// failure as its code and reason.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/netsvc-go/netsvc/service"
)

type callFlags struct{ clientFlags }

func callCommand() *command {
	return &command{
		name:    "call",
		summary: "call a service method through a node and print the JSON result",
		usage:   "--server HOST:PORT [--group NAME] [--timeout D] SERVICE METHOD [JSON-ARG...]",
		flags: func(fs *flag.FlagSet) any {
			c := &callFlags{}
			c.register(fs, "give up linking and calling after this long")
			return c
		},
		run: runCall,
	}
}

func runCall(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*callFlags)
	if len(env.args) < 2 {
		return env.usageError("want SERVICE METHOD [JSON-ARG...]")
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	name, method := env.args[0], env.args[1]
	args, err := parseJSONArgs(env.args[2:])
	if err != nil {
		return env.usageError("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "call", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	res, err := n.Runtime().Call(ctx, service.Name(name), method, args...)
	if err != nil {
		var f *service.Failure
		if errors.As(err, &f) {
			if f.Code == service.CodeTimedOut && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				c := *f
				c.Details = fmt.Sprintf("no answer from %s within %v", name, cfg.timeout)
				f = &c
			}
			fmt.Fprintln(env.stderr, failureLine(f))
			return exitFailure
		}
		return env.fail(err)
	}
	v, err := payloadValue(res)
	if err != nil {
		return env.fail(fmt.Errorf("cannot decode the result: %w", err))
	}
	b, err := marshalJSON(v)
	if err != nil {
		return env.fail(fmt.Errorf("cannot print the result as JSON: %w", err))
	}
	fmt.Fprintf(env.stdout, "%s\n", b)
	return exitOK
}

// failureLine is how a failed call reads on stderr:
// "call failed: 56 bad arguments: multiply: expected 2 arguments, received 1".
func failureLine(f *service.Failure) string {
	desc := f.Description
	if desc == "" {
		desc = f.Code.String()
	}
	s := "call failed: " + strconv.Itoa(int(f.Code)) + " " + desc
	if f.Details != "" {
		s += ": " + f.Details
	}
	return oneLine(s)
}
