package console

import (
	"encoding/json"
	"net/http"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// The read-only JSON API: each handler returns what it answers.

// ExchangeInfo describes one exchange endpoint of the node.
type ExchangeInfo struct {
	Group  string `json:"group"`
	Role   string `json:"role"`   // "server" or "client"
	Listen string `json:"listen"` // "" when it does not listen
	PID    string `json:"pid"`    // the exchange actor in the tree
	Links  int    `json:"links"`
}

// apiNode answers GET /api/node: who the node is.
func (c *Console) apiNode(*http.Request) (any, error) {
	n, rt := c.cfg.Node, c.cfg.Node.Runtime()
	st := rt.Kernel().Stats()
	xs := c.exchanges(n.Links())
	groups := make([]string, len(xs))
	links := 0
	for i, x := range xs {
		groups[i] = x.Group
		links += x.Links
	}
	group := ""
	if len(groups) > 0 {
		group = groups[0]
	}
	up := time.Since(rt.Kernel().Started())
	info := map[string]any{
		"name":           rt.Node(),
		"process":        rt.ProcessID().String(),
		"group":          group,
		"groups":         groups,
		"exchanges":      xs,
		"listen":         n.Addr(),
		"console":        c.addr,
		"gossip":         "",
		"version":        buildVersion(),
		"started":        rt.Kernel().Started(),
		"uptime":         up.Round(time.Second).String(),
		"uptime_seconds": up.Seconds(),
		"links":          links,
		"local_services": st.LocalServices,
		"bindings":       st.Bindings,
		"processes":      st.Processes,
		"token":          c.cfg.Token != "",
	}
	if c.cfg.NodeInfo != nil {
		for k, v := range c.cfg.NodeInfo() {
			info[k] = v
		}
	}
	return info, nil
}

// exchanges describes the node's exchanges, roles read from the tree.
func (c *Console) exchanges(links []exchange.LinkStatus) []ExchangeInfo {
	roles := map[string]string{}
	for _, a := range c.cfg.Node.Runtime().Kernel().Tree().Snapshot() {
		if a.Kind == registry.KindExchange {
			if r, ok := a.Detail["role"].(string); ok {
				roles[a.ID] = r
			}
		}
	}
	linkCount := map[string]int{}
	for _, l := range links {
		linkCount[l.Group]++
	}
	out := []ExchangeInfo{}
	for _, x := range c.cfg.Node.Exchanges() {
		pid := ""
		if p := x.PID(); p != nil {
			pid = p.Id
		}
		out = append(out, ExchangeInfo{Group: x.Group(), Role: roles[pid], Listen: x.Addr(), PID: pid, Links: linkCount[x.Group()]})
	}
	return out
}

// apiTree answers GET /api/tree: the live actor tree.
func (c *Console) apiTree(*http.Request) (any, error) {
	return buildTree(c.cfg.Node), nil
}

// ServiceInfo is one binding of GET /api/services: the binding's fields
// (name, address, audience, groups, local, node, hops, link,
// exchange_group) plus the owning process and "local" or "remote".
type ServiceInfo struct {
	service.Binding
	Process  service.ProcessID `json:"process"`
	Location string            `json:"location"`
	// Calls counts the requests a local service served (its methods
	// together), for the page's calls per second; absent for remote ones.
	Calls *uint64 `json:"calls,omitempty"`
}

// apiServices answers GET /api/services: every binding the node sees.
func (c *Console) apiServices(*http.Request) (any, error) {
	return services(c.cfg.Node.Runtime()), nil
}

func services(rt *service.Runtime) []ServiceInfo {
	bs := rt.Services()
	calls := map[service.Address]uint64{}
	for _, s := range rt.Kernel().Stats().Services {
		for _, m := range s.Methods {
			calls[s.Address] += m.Calls
		}
	}
	out := make([]ServiceInfo, len(bs))
	for i, b := range bs {
		if b.Groups == nil {
			b.Groups = []string{}
		}
		out[i] = ServiceInfo{Binding: b, Process: b.Address.Process, Location: b.Location()}
		if b.Local {
			n := calls[b.Address]
			out[i].Calls = &n
		}
	}
	return out
}

// Connections is the answer of GET /api/connections.
type Connections struct {
	// Time is when the counters were read, for rates between two reads.
	Time      time.Time             `json:"time"`
	Links     []exchange.LinkStatus `json:"links"`
	Targets   []TargetInfo          `json:"targets"`
	Exchanges []ExchangeInfo        `json:"exchanges"`
}

// TargetInfo is a peer an exchange dials, with the exchange's group.
type TargetInfo struct {
	Group string `json:"group"`
	exchange.TargetStatus
}

// apiConnections answers GET /api/connections: the links and the peers
// the exchanges dial.
func (c *Console) apiConnections(*http.Request) (any, error) {
	out := Connections{Time: time.Now(), Links: []exchange.LinkStatus{}, Targets: []TargetInfo{}}
	for _, x := range c.cfg.Node.Exchanges() {
		out.Links = append(out.Links, x.Links()...)
		for _, t := range x.Targets() {
			out.Targets = append(out.Targets, TargetInfo{Group: x.Group(), TargetStatus: t})
		}
	}
	out.Exchanges = c.exchanges(out.Links)
	return out, nil
}

// apiMembers answers GET /api/members: the cluster members, or [].
func (c *Console) apiMembers(*http.Request) (any, error) {
	return c.members(), nil
}

// members returns Config.Members' answer, [] for none.
func (c *Console) members() any {
	if c.cfg.Members == nil {
		return []any{}
	}
	m := c.cfg.Members()
	if m == nil {
		return []any{}
	}
	if v := reflect.ValueOf(m); (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.IsNil() {
		return []any{}
	}
	return m
}

// memberList reads the members Config.Members returns (any JSON-ready
// values) as far as the console needs them.
func (c *Console) memberList() []memberConsole {
	var ms []memberConsole
	if b, err := json.Marshal(c.members()); err == nil {
		_ = json.Unmarshal(b, &ms)
	}
	return ms
}

// memberStates counts the cluster members by state: alive, dead and
// left always (0 without a cluster), any other state memberlist reports
// as it comes.
func (c *Console) memberStates() map[string]int {
	out := map[string]int{"alive": 0, "dead": 0, "left": 0}
	for _, m := range c.memberList() {
		if m.State != "" {
			out[m.State]++
		}
	}
	return out
}

// apiSubscriptions answers GET /api/subscriptions: what the node's
// services listen to.
func (c *Console) apiSubscriptions(*http.Request) (any, error) {
	return c.cfg.Node.Runtime().Kernel().Interests(), nil
}

// buildVersion is the module version or VCS revision of the binary.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			rev := s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return "(devel " + rev + ")"
		}
	}
	return "(devel)"
}
