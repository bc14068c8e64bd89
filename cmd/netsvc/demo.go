package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// The demo services that "netsvc node --demo" hosts.
//
//	math    audience "*", in service group "web-services":
//	        multiply(x, y), add(x, y), echo(v), sleep(ms)
//	seed    audience "*": publishes "next" {count, value, time} every
//	        --demo-interval, and once at start a retained "init" {time}
//	        kept forever
//	hidden  audience "": echo(v), callable only inside its own process
//
// Numbers: multiply and add take any numbers (JSON 6 or 1.5). When both
// are integers the arithmetic is exact int64 and the result an integer;
// otherwise, or when int64 would overflow, it is float64, and a float64
// result that is a whole number within int64 is returned as an integer,
// so "multiply 1.5 2" gives 3, not 3.0.

// Names of the demo services and the service group math joins.
const (
	demoMath      = "math"
	demoSeed      = "seed"
	demoHidden    = "hidden"
	demoMathGroup = "web-services"
)

// startDemo starts the three demo services in rt.
func startDemo(ctx context.Context, rt *service.Runtime, interval time.Duration) error {
	if _, err := rt.Start(ctx, demoMath, mathService(), service.Groups(demoMathGroup)); err != nil {
		return err
	}
	if _, err := rt.Start(ctx, demoSeed, seedService(interval)); err != nil {
		return err
	}
	if _, err := rt.Start(ctx, demoHidden, hiddenService(), service.Audience("")); err != nil {
		return err
	}
	return nil
}

// mathService exports multiply, add, echo and sleep.
func mathService() service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y any) (any, error) { return arith("multiply", x, y) })
		a.Export("add", func(x, y any) (any, error) { return arith("add", x, y) })
		a.Export("echo", func(v any) any { return v })
		// sleep answers after ms milliseconds from a timer: the service
		// keeps serving meanwhile.
		a.Export("sleep", func(r *service.Request, ms int) error {
			if ms < 0 {
				return service.Fail(service.CodeBadArguments, service.CodeBadArguments.String(),
					fmt.Sprintf("sleep: ms must not be negative, got %d", ms))
			}
			d := r.Delay()
			r.Agent().Logger().Debug("sleeping before replying", "ms", ms, "caller", r.Sender().String())
			r.Agent().After(time.Duration(ms)*time.Millisecond, func() { _ = d.Reply(ms) })
			return nil
		})
		return nil
	})
}

// arith multiplies or adds two numbers (see the comment at the top).
func arith(op string, x, y any) (any, error) {
	xi, xInt, err := number(op, 1, x)
	if err != nil {
		return nil, err
	}
	yi, yInt, err := number(op, 2, y)
	if err != nil {
		return nil, err
	}
	if xInt && yInt {
		a, b := xi.(int64), yi.(int64)
		switch op {
		case "multiply":
			if p := a * b; a == 0 || (p/a == b && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64)) {
				return p, nil
			}
		case "add":
			if s := a + b; (s > a) == (b > 0) {
				return s, nil
			}
		}
	}
	fx, fy := toFloat(xi), toFloat(yi)
	r := fx * fy
	if op == "add" {
		r = fx + fy
	}
	return wholeAsInt(r), nil
}

// number reads a decoded CBOR number: an int64 (ok is true) or a
// float64 (ok is false).
func number(op string, i int, v any) (n any, isInt bool, err error) {
	switch v := v.(type) {
	case int64:
		return v, true, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true, nil
		}
		return float64(v), false, nil
	case float64:
		return v, false, nil
	case float32:
		return float64(v), false, nil
	}
	return nil, false, service.Fail(service.CodeBadArguments, service.CodeBadArguments.String(),
		fmt.Sprintf("%s: argument %d is %s, want a number", op, i, describe(v)))
}

func toFloat(v any) float64 {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v.(float64)
}

// wholeAsInt returns f as an int64 when it is a whole number int64 can
// hold, else f.
func wholeAsInt(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any, map[any]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// seedService publishes "next" every interval and a retained "init" once.
func seedService(interval time.Duration) service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		count := 0
		a.Every(interval, func() {
			count++
			if err := a.Publish("next", map[string]any{
				"count": count,
				"value": rand.Int64N(1_000_000),
				"time":  time.Now().UTC(),
			}); err != nil {
				a.Logger().Warn("cannot publish next", "error", err)
			}
		})
		return a.PublishRetained("init", map[string]any{"time": time.Now().UTC()}, service.Forever)
	})
}

// hiddenService echoes, visible inside its own process only (start it
// with service.Audience("")).
func hiddenService() service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("echo", func(v any) any { return v })
		return nil
	})
}
