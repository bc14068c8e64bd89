package main

// "--limit NAME=VALUE": every bound of a node by name, parsed and listed
// in the help.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/service"
)

// nodeLimits are the bounds of "netsvc node" (rule 36), set with
// --limit NAME=VALUE, one flag per bound repeated as needed: a table
// here names each, so help lists them all with their defaults.
type nodeLimits struct {
	node    connection.Limits
	link    connection.Config
	runtime service.Config
	console console.Config
	set     map[string]string // as given, for the log
}

// limitSpec is one bound: its name, what it bounds, its default as help
// shows it, and where its value goes.
type limitSpec struct {
	name, what, def string
	kind            limitKind
	set             func(l *nodeLimits, v int64)
}

type limitKind int

const (
	limitCount limitKind = iota
	limitBytes
	limitDuration
)

func limitSpecs() []limitSpec {
	return []limitSpec{
		{"handshaking", "connections not through their handshake, for the node", "1024", limitCount,
			func(l *nodeLimits, v int64) { l.node.Handshaking = int(v) }},
		{"handshaking-per-host", "of those, from one remote host", "64", limitCount,
			func(l *nodeLimits, v int64) { l.node.HandshakingPerHost = int(v) }},
		{"incomplete", "bytes of frames still arriving, for the node", "64MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.node.Incomplete = v }},
		{"queued", "bytes queued outbound, for the node", "256MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.node.Queued = v }},
		{"bindings", "remote bindings announced over all links", "250000", limitCount,
			func(l *nodeLimits, v int64) { l.node.Bindings = v }},
		{"frame", "the largest frame a link takes or sends", "16MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.link.MaxFrame = int(v) }},
		{"frame-timeout", "time a frame may take to arrive whole", "30s", limitDuration,
			func(l *nodeLimits, v int64) { l.link.FrameTimeout = time.Duration(v) }},
		{"link-queue", "bytes queued on one link past which reports drop and requests are refused", "1MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.link.QueueSoft = int(v) }},
		{"link-queue-hard", "bytes queued on one link past which it closes", "64MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.link.QueueHard = int(v) }},
		{"client-bindings", "services one client link may announce", "10000", limitCount,
			func(l *nodeLimits, v int64) { l.link.ClientBindings = int(v) }},
		{"client-processes", "processes one client link may announce (a bridge brings others')", "256", limitCount,
			func(l *nodeLimits, v int64) { l.link.ClientProcesses = int(v) }},
		{"group-joins", "service-group joins one link may announce", "65536", limitCount,
			func(l *nodeLimits, v int64) { l.link.GroupJoins = int(v) }},
		{"payload", "the largest payload (arguments, result, report, message)", "16MiB-4KiB", limitBytes,
			func(l *nodeLimits, v int64) { l.runtime.MaxPayload = int(v) }},
		{"service-queue", "bytes waiting for one service", "64MiB", limitBytes,
			func(l *nodeLimits, v int64) { l.runtime.ServiceQueueLimit = int(v) }},
		{"gateway-body", "the largest HTTP gateway request body", "the payload limit", limitBytes,
			func(l *nodeLimits, v int64) { l.console.GatewayMaxBody = v }},
		{"gateway-in-flight", "HTTP gateway calls at once", "8", limitCount,
			func(l *nodeLimits, v int64) { l.console.GatewayMaxInFlight = int(v) }},
	}
}

// limitsFlag is --limit NAME=VALUE, repeatable.
type limitsFlag struct{ l *nodeLimits }

func (f limitsFlag) String() string {
	if f.l == nil {
		return ""
	}
	var out []string
	for k, v := range f.l.set {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (f limitsFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return fmt.Errorf("%q: want NAME=VALUE (see 'netsvc help node' for the names)", kv)
		}
		var spec *limitSpec
		for _, sp := range limitSpecs() {
			if sp.name == name {
				spec = &sp
				break
			}
		}
		if spec == nil {
			return fmt.Errorf("unknown limit %q (see 'netsvc help node' for the names)", name)
		}
		v, err := parseLimit(spec.kind, value)
		if err != nil {
			return fmt.Errorf("limit %s: %v", name, err)
		}
		spec.set(f.l, v)
		if f.l.set == nil {
			f.l.set = map[string]string{}
		}
		f.l.set[name] = value
	}
	return nil
}

// parseLimit reads a positive count, a size ("64MiB", "512KiB",
// "1000000") or a duration ("30s").
func parseLimit(kind limitKind, s string) (int64, error) {
	switch kind {
	case limitDuration:
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%q: want a positive duration such as 30s", s)
		}
		return int64(d), nil
	case limitBytes:
		mult := int64(1)
		for _, u := range []struct {
			suffix string
			n      int64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
			if rest, ok := strings.CutSuffix(s, u.suffix); ok {
				s, mult = rest, u.n
				break
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > (1<<62)/mult {
			return 0, fmt.Errorf("%q: want a positive size such as 64MiB, 512KiB or 1000000", s)
		}
		return n * mult, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive whole number", s)
	}
	return n, nil
}

// limitsHelp lists the limits for "netsvc help node".
func limitsHelp() string {
	var b strings.Builder
	b.WriteString("\nLimits (--limit NAME=VALUE, repeatable or comma-separated; sizes take KiB, MiB, GiB):\n")
	for _, sp := range limitSpecs() {
		fmt.Fprintf(&b, "  %-22s %s (default %s)\n", sp.name, sp.what, sp.def)
	}
	return b.String()
}
