package main

// "netsvc tree": the live actor tree from a node's console, indented or
// as JSON.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

type treeFlags struct {
	settings // --console-token, --console-token-file, NETSVC_CONSOLE_TOKEN

	console string
	token   settingValue
	timeout time.Duration
	json    bool
}

func treeCommand() *command {
	return &command{
		name:    "tree",
		summary: "print the live actor tree of a node, from its console",
		usage:   "[--console URL] [--console-token TOKEN] [--json]",
		flags: func(fs *flag.FlagSet) any {
			c := &treeFlags{}
			fs.StringVar(&c.console, "console", envOr("NETSVC_CONSOLE", "http://"+defaultConsole+"/"), "the node's console `URL` (default NETSVC_CONSOLE, else the local node's: http://"+defaultConsole+"/)")
			c.bind(fs, &c.token, consoleTokenSetting, "", "the console's `TOKEN`, when it asks for one")
			fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up on the console after this long")
			fs.BoolVar(&c.json, "json", false, "print the console's JSON instead of the indented tree")
			return c
		},
		run: runTree,
	}
}

// treeNode is one actor of GET /api/tree: {name, pid, kind, children}
// plus whatever counters the console knows, printed as key=value.
type treeNode struct {
	Name     string
	PID      string
	Kind     string
	Children []*treeNode
	Extra    map[string]json.RawMessage
}

func (t *treeNode) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	str := func(k string) string {
		var s string
		if raw, ok := m[k]; ok {
			if json.Unmarshal(raw, &s) != nil {
				s = string(raw)
			}
			delete(m, k)
		}
		return s
	}
	t.Name, t.PID, t.Kind = str("name"), str("pid"), str("kind")
	if raw, ok := m["children"]; ok {
		if err := json.Unmarshal(raw, &t.Children); err != nil {
			return fmt.Errorf("children of %s: %w", t.PID, err)
		}
		delete(m, "children")
	}
	t.Extra = m
	return nil
}

func runTree(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*treeFlags)
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	if cfg.console == "" {
		return env.usageError("--console URL is empty")
	}
	if cfg.timeout <= 0 {
		return env.usageError("--timeout must be positive, got %v", cfg.timeout)
	}
	var raw json.RawMessage
	if err := consoleGet(ctx, cfg.console, "/api/tree", cfg.token, cfg.timeout, &raw); err != nil {
		return env.fail(err)
	}
	if cfg.json {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return env.fail(err)
		}
		fmt.Fprintf(env.stdout, "%s\n", buf.Bytes())
		return exitOK
	}
	// One root, or (tolerated) a list of roots.
	var roots []*treeNode
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(raw, &roots); err != nil {
			return env.fail(fmt.Errorf("the console's tree: %w", err))
		}
	} else {
		var root treeNode
		if err := json.Unmarshal(raw, &root); err != nil {
			return env.fail(fmt.Errorf("the console's tree: %w", err))
		}
		roots = []*treeNode{&root}
	}
	for _, r := range roots {
		printTree(env.stdout, r, 0)
	}
	return exitOK
}

// extras renders an actor's counters as sorted key=value pairs: since
// becomes up=DURATION, and the fields of detail are spelled out.
func extras(m map[string]json.RawMessage) []string {
	var out []string
	for k, v := range m {
		switch k {
		case "since":
			var ts time.Time
			if json.Unmarshal(v, &ts) == nil && !ts.IsZero() {
				out = append(out, "up="+time.Since(ts).Round(time.Second).String())
				continue
			}
		case "detail":
			var d map[string]json.RawMessage
			if json.Unmarshal(v, &d) == nil {
				out = append(out, extras(d)...)
				continue
			}
		}
		out = append(out, k+"="+rawText(v))
	}
	sort.Strings(out)
	return out
}

// rawText is a JSON value as text: strings unquoted unless they hold
// spaces or are empty, anything else compact JSON.
func rawText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" || strings.ContainsAny(s, " \t\"=") {
			return strconv.Quote(s)
		}
		return s
	}
	var c bytes.Buffer
	if json.Compact(&c, v) == nil {
		return c.String()
	}
	return string(v)
}

// printTree prints "name [kind] pid key=value..." indented by depth.
func printTree(w io.Writer, t *treeNode, depth int) {
	var b strings.Builder
	b.WriteString(strings.Repeat("  ", depth))
	name := t.Name
	if name == "" {
		name = t.PID
	}
	b.WriteString(name)
	if t.Kind != "" {
		b.WriteString(" [" + t.Kind + "]")
	}
	if t.PID != "" && t.PID != name {
		b.WriteString(" " + t.PID)
	}
	for _, kv := range extras(t.Extra) {
		b.WriteString(" " + kv)
	}
	fmt.Fprintln(w, b.String())
	for _, c := range t.Children {
		printTree(w, c, depth+1)
	}
}
