package exchange

// The one filter every announcement passes: audience, exchange groups
// and split horizon (rules 1–7).

import "github.com/netsvc-go/netsvc/actors/registry"

// Exports decides whether a registry change goes out on a link: the
// audience, exchange-group and split-horizon rules (rules 1–10, package actors) as
// one filter. role is this process's endpoint role on the link's group.
//
//   - Own services, and bindings bridged in from another exchange group,
//     go to every link whose group the audience allows: "*" everywhere,
//     "" nowhere, any other audience only to links of that group
//     (rules 1–3, 5, 7).
//   - A binding learned within this link's group is never sent back where
//     it came from (rule 6). A client forwards it nowhere (its only
//     other link in the group is to the server it moves to, rule 11);
//     a server forwards what came from a client to all links, and what
//     came from a server only to its clients, since servers are fully
//     meshed and hear each other directly (rule 7). The audience was
//     checked where the binding entered the group.
//
// Processes themselves (c.Process) travel like services with audience
// "*", so replies and liveness reach every process that can see a registry.
func Exports(c registry.Change, to registry.LinkInfo, role registry.Role) bool {
	audience := c.Binding.Audience
	if c.Process {
		audience = "*"
	}
	if c.Origin == nil {
		return audienceAllows(audience, to.ExchangeGroup)
	}
	from := c.Origin.Info()
	if from.ID == to.ID {
		return false
	}
	if from.ExchangeGroup != to.ExchangeGroup {
		return audienceAllows(audience, to.ExchangeGroup) // a bridge: as if local
	}
	if role == registry.RoleClient {
		// Two links of a client in one group are an old and a new server
		// while it moves: each server has the bindings already, and
		// handing them across would only loop them back (rule 11).
		return false
	}
	if from.PeerRole == registry.RoleClient {
		return true
	}
	return to.PeerRole == registry.RoleClient
}

func audienceAllows(audience, group string) bool {
	return audience == "*" || (audience != "" && audience == group)
}
