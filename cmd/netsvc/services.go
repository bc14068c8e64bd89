package main

// "netsvc services": the registry as a node sees it, as a table or JSON.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/netsvc-go/netsvc/service"
)

type servicesFlags struct {
	clientFlags
	console      string
	consoleToken settingValue // bound in clientFlags.settings, with --token
	json         bool
}

func servicesCommand() *command {
	return &command{
		name:    "services",
		summary: "list the services a node sees",
		usage:   "(--server HOST:PORT [--group NAME] | --console URL [--console-token TOKEN]) [--json]",
		flags: func(fs *flag.FlagSet) any {
			c := &servicesFlags{}
			c.register(fs, "give up linking to the server (or the console) after this long")
			fs.StringVar(&c.console, "console", "", "ask the node's console at `URL` instead of linking to --server")
			c.bind(fs, &c.consoleToken, consoleTokenSetting, "", "the console's `TOKEN`, when it asks for one")
			fs.BoolVar(&c.json, "json", false, "print a JSON array instead of a table")
			return c
		},
		run: runServices,
	}
}

// serviceJSON is one binding as services prints it: the fields of
// service.Binding plus the owning process and "local" or "remote".
type serviceJSON struct {
	service.Binding
	Process  service.ProcessID `json:"process"`
	Location string            `json:"location"`
}

// serviceRow is what the table shows, read from either source.
type serviceRow struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Audience string   `json:"audience"`
	Groups   []string `json:"groups"`
	Node     string   `json:"node"`
	Location string   `json:"location"`
	Local    bool     `json:"local"`
	Hops     int      `json:"hops"`
}

func runServices(ctx context.Context, env *cmdEnv) int {
	cfg := env.cfg.(*servicesFlags)
	if len(env.args) > 0 {
		return env.usageError("unexpected argument %q", env.args[0])
	}
	if err := cfg.validate(); err != nil {
		return env.usageError("%v", err)
	}
	if cfg.console != "" {
		serverSet := false
		env.fs.Visit(func(f *flag.Flag) { serverSet = serverSet || f.Name == "server" || f.Name == "group" })
		if serverSet {
			return env.usageError("use --server or --console, not both")
		}
		return servicesFromConsole(ctx, env, cfg)
	}
	cfg.progress, cfg.logOut = env.stderr, env.stderr
	n, err := startClient(ctx, "services", &cfg.clientFlags)
	if err != nil {
		return env.fail(err)
	}
	defer stopNode(n)
	// The bindings as the node itself sees them: "local" is what runs in
	// the node, and the hop to the node does not count.
	var server service.ProcessID
	if l, ok := serverLink(n); ok {
		server = l.RemoteProcess
	}
	var list []serviceJSON
	for _, b := range n.Runtime().Services() {
		if b.Local {
			continue // this client's own (it has none listed)
		}
		b.Local = b.Address.Process == server
		b.Hops = max(b.Hops-1, 0)
		b.Link = ""
		list = append(list, serviceJSON{Binding: b, Process: b.Address.Process, Location: b.Location()})
	}
	sort.SliceStable(list, func(i, j int) bool { return lessBinding(list[i].Binding, list[j].Binding) })
	if list == nil {
		list = []serviceJSON{}
	}
	if cfg.json {
		return printJSON(env, list)
	}
	rows := make([]serviceRow, len(list))
	for i, s := range list {
		rows[i] = serviceRow{Name: s.Name, Address: s.Address.String(), Audience: s.Audience, Groups: s.Groups,
			Node: s.Node, Location: s.Location, Local: s.Local, Hops: s.Hops}
	}
	printServices(env.stdout, rows)
	return exitOK
}

func lessBinding(a, b service.Binding) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.Address.String() < b.Address.String()
}

// servicesFromConsole prints the console's /api/services: a JSON array
// of bindings, passed through as they come with --json.
func servicesFromConsole(ctx context.Context, env *cmdEnv, cfg *servicesFlags) int {
	var raw []json.RawMessage
	if err := consoleGet(ctx, cfg.console, "/api/services", cfg.consoleToken, cfg.timeout, &raw); err != nil {
		return env.fail(err)
	}
	rows := make([]serviceRow, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &rows[i]); err != nil {
			return env.fail(fmt.Errorf("the console's service %d: %w", i+1, err))
		}
	}
	if cfg.json {
		if raw == nil {
			raw = []json.RawMessage{}
		}
		return printJSON(env, raw)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Name != rows[j].Name {
			return rows[i].Name < rows[j].Name
		}
		if rows[i].Node != rows[j].Node {
			return rows[i].Node < rows[j].Node
		}
		return rows[i].Address < rows[j].Address
	})
	printServices(env.stdout, rows)
	return exitOK
}

func printServices(w io.Writer, rows []serviceRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tAUDIENCE\tGROUPS\tNODE\tLOCATION\tHOPS")
	for _, r := range rows {
		audience := r.Audience
		if audience == "" {
			audience = `""`
		}
		groups := strings.Join(r.Groups, ",")
		if groups == "" {
			groups = "-"
		}
		loc := r.Location
		if loc == "" {
			loc = "remote"
			if r.Local {
				loc = "local"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Address, audience, groups, r.Node, loc, strconv.Itoa(r.Hops))
	}
	tw.Flush()
}

// printJSON prints v as indented JSON.
func printJSON(env *cmdEnv, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintf(env.stdout, "%s\n", b)
	return exitOK
}
