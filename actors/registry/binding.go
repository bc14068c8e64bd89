package registry

// Bindings, registry events and the targets of calls, subscriptions and
// watches.

import "slices"

// Binding is what a registry knows of one service.
type Binding struct {
	Name     string   `json:"name"`
	Address  Address  `json:"address"`
	Audience string   `json:"audience"`
	Groups   []string `json:"groups"`
	// Local is true for services of this process.
	Local bool `json:"local"`
	// Node is the name of the node (process) the service lives in.
	Node string `json:"node"`
	// Hops is the number of links between this process and the service's.
	Hops int `json:"hops"`
	// Link is the connection a remote binding was learned through.
	Link string `json:"link,omitempty"`
	// ExchangeGroup is the exchange group of that connection.
	ExchangeGroup string `json:"exchange_group"`
}

// Process returns the id of the process the service lives in.
func (b Binding) Process() ProcessID { return b.Address.Process }

// Location is "local" or "remote".
func (b Binding) Location() string {
	if b.Local {
		return "local"
	}
	return "remote"
}

// InGroup reports whether the service has joined group g.
func (b Binding) InGroup(g string) bool { return slices.Contains(b.Groups, g) }

// EventKind says what changed in a registry event.
type EventKind uint8

// Registry event kinds (rule 12).
const (
	Available EventKind = iota + 1 // a service became visible
	Withdrawn                      // a service stopped being visible
	Joined                         // a service joined a service group
	Left                           // a service left a service group
)

func (k EventKind) String() string {
	switch k {
	case Available:
		return "available"
	case Withdrawn:
		return "withdrawn"
	case Joined:
		return "joined"
	case Left:
		return "left"
	}
	return "?"
}

// MarshalText names the kind in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// RegistryEvent tells a watcher of a change: a binding available or
// withdrawn, or joining or leaving Group.
type RegistryEvent struct {
	Kind    EventKind `json:"kind"`
	Binding Binding   `json:"binding"`
	Group   string    `json:"group,omitempty"`
}

// Target names whom to call, subscribe to or watch: a service Name, an
// Address, a service Group, or AllServices.
type Target interface {
	target()
	String() string
}

// Name targets every service of that name (a call picks one, rule 13).
type Name string

// Group targets the members of a service group.
type Group string

type allServices struct{}

// AllServices targets the whole registry (for watches).
var AllServices Target = allServices{}

func (Name) target()        {}
func (Group) target()       {}
func (Address) target()     {}
func (allServices) target() {}

func (n Name) String() string      { return string(n) }
func (g Group) String() string     { return "group " + string(g) }
func (allServices) String() string { return "all services" }

// String reads like "available math (9f3a…/1) local".
func (e RegistryEvent) String() string {
	s := e.Kind.String() + " " + DisplayName(e.Binding.Name) + " (" + e.Binding.Address.String() + ") " + e.Binding.Location()
	if e.Group != "" {
		s += " group " + e.Group
	}
	return s
}
