package exchange_test

import (
	"testing"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// fakeLink is a link as the filter sees it: only its Info matters.
type fakeLink struct{ info registry.LinkInfo }

func (l fakeLink) Send(*registry.Envelope) error { return nil }
func (l fakeLink) Info() registry.LinkInfo       { return l.info }

func link(id, group string, local, peer registry.Role) registry.LinkInfo {
	return registry.LinkInfo{ID: id, ExchangeGroup: group, LocalRole: local, PeerRole: peer, PeerProcess: 99, PeerNode: id}
}

const (
	server = registry.RoleServer
	client = registry.RoleClient
)

// TestExports checks the audience, exchange-group and split-horizon
// rules (rules 1–3, 5–7) as the one filter every announcement
// passes on its way to a link.
func TestExports(t *testing.T) {
	// Links of a server process in group "": to another server, to two
	// clients. Links of a client process: to its server, to a fallback.
	// Links of a bridge: a client link in "" and one in "backend".
	var (
		srvToServer  = link("s-server", "", server, server)
		srvToServer2 = link("s-server2", "", server, server)
		srvToClient  = link("s-client", "", server, client)
		srvToClient2 = link("s-client2", "", server, client)
		srvToGClient = link("s-gclient", "G", server, client)
		cliToServer  = link("c-server", "", client, server)
		cliToServer2 = link("c-server2", "", client, server)
		bridgeDef    = link("b-default", "", client, server)
		bridgeBack   = link("b-backend", "backend", client, server)
	)
	svc := func(audience string, origin *registry.LinkInfo) registry.Change {
		c := registry.Change{Kind: registry.Available, Binding: registry.Binding{Name: "s", Audience: audience,
			Address: registry.Address{Process: 7, ID: 1}}}
		if origin != nil {
			c.Origin = fakeLink{*origin}
		}
		return c
	}
	proc := func(origin *registry.LinkInfo) registry.Change {
		c := registry.Change{Kind: registry.Available, Process: true, Binding: registry.Binding{Address: registry.Address{Process: 7}}}
		if origin != nil {
			c.Origin = fakeLink{*origin}
		}
		return c
	}
	withdrawn := func(c registry.Change) registry.Change { c.Kind = registry.Withdrawn; return c }
	joined := func(c registry.Change) registry.Change { c.Kind = registry.Joined; c.Group = "web"; return c }

	cases := []struct {
		name   string
		change registry.Change
		to     registry.LinkInfo
		role   registry.Role
		want   bool
	}{
		// Rule 1: audience "*" goes out through every endpoint.
		{"own * to a server", svc("*", nil), srvToServer, server, true},
		{"own * to a client", svc("*", nil), srvToClient, server, true},
		{"own * to a group G link", svc("*", nil), srvToGClient, server, true},
		{"own * from a client process", svc("*", nil), cliToServer, client, true},
		{"own * withdrawn", withdrawn(svc("*", nil)), srvToServer, server, true},
		{"own * joined a group", joined(svc("*", nil)), srvToClient, server, true},
		// Rule 2: audience "" stays in its process.
		{"own \"\" to a server", svc("", nil), srvToServer, server, false},
		{"own \"\" to a client", svc("", nil), srvToClient, server, false},
		{"own \"\" from a client process", svc("", nil), cliToServer, client, false},
		{"own \"\" withdrawn", withdrawn(svc("", nil)), srvToClient, server, false},
		{"own \"\" joined a group", joined(svc("", nil)), srvToClient, server, false},
		// Rule 3: audience G only through endpoints of group G.
		{"own G to a G link", svc("G", nil), srvToGClient, server, true},
		{"own G to a \"\" link", svc("G", nil), srvToClient, server, false},
		{"own G to a backend link", svc("G", nil), bridgeBack, client, false},
		{"own backend to a backend link", svc("backend", nil), bridgeBack, client, true},
		// Rule 6: never back over the link it came from, whatever the roles.
		{"back to its client", svc("*", &srvToClient), srvToClient, server, false},
		{"back to its server", svc("*", &srvToServer), srvToServer, server, false},
		{"client process back to its server", svc("*", &cliToServer), cliToServer, client, false},
		{"withdrawal back to its origin", withdrawn(svc("*", &srvToClient)), srvToClient, server, false},
		{"group change back to its origin", joined(svc("*", &srvToClient)), srvToClient, server, false},
		{"process back to its origin", proc(&srvToServer), srvToServer, server, false},
		// Rule 7: a server forwards what a client told it everywhere...
		{"server: client's binding to a server", svc("*", &srvToClient), srvToServer, server, true},
		{"server: client's binding to another client", svc("*", &srvToClient), srvToClient2, server, true},
		{"server: client's withdrawal to a server", withdrawn(svc("*", &srvToClient)), srvToServer, server, true},
		// ...and what a server told it to its clients only.
		{"server: server's binding to a client", svc("*", &srvToServer), srvToClient, server, true},
		{"server: server's binding to another server", svc("*", &srvToServer), srvToServer2, server, false},
		{"server: server's withdrawal to another server", withdrawn(svc("*", &srvToServer)), srvToServer2, server, false},
		{"server: server's group change to another server", joined(svc("*", &srvToServer)), srvToServer2, server, false},
		{"server: server's group change to a client", joined(svc("*", &srvToServer)), srvToClient, server, true},
		// A client moving between servers forwards nothing between them (rule 11).
		{"client: from its server to the one it moves to", svc("*", &cliToServer), cliToServer2, client, false},
		{"client: process from its server to the one it moves to", proc(&cliToServer), cliToServer2, client, false},
		// The audience was checked where a binding entered the group; a
		// G-audience binding learned in G travels on within G.
		{"server: G binding from a G client stays in G", svc("G", &srvToGClient), link("s-gserver", "G", server, server), server, true},
		// Rule 5: a bridge re-exports a binding from another exchange
		// group as if it were local, under rules 1–3.
		{"bridge: backend * into \"\"", svc("*", &bridgeBack), bridgeDef, client, true},
		{"bridge: \"\" * into backend", svc("*", &bridgeDef), bridgeBack, client, true},
		{"bridge: backend-audience into \"\"", svc("backend", &bridgeBack), bridgeDef, client, false},
		{"bridge: backend-audience withdrawal into \"\"", withdrawn(svc("backend", &bridgeBack)), bridgeDef, client, false},
		{"bridge: \"\"-audience from backend into \"\"", svc("", &bridgeBack), bridgeDef, client, false},
		{"bridge: G-audience from \"\" into backend", svc("G", &bridgeDef), bridgeBack, client, false},
		{"bridge on a server: server's binding bridged to a server", svc("*", &bridgeBack), srvToServer, server, true},
		// Processes travel like audience "*" services, split horizon included.
		{"own process to a server", proc(nil), srvToServer, server, true},
		{"own process to a G link", proc(nil), srvToGClient, server, true},
		{"process from a client to a server", proc(&srvToClient), srvToServer, server, true},
		{"process from a server to a client", proc(&srvToServer), srvToClient, server, true},
		{"process from a server to a server", proc(&srvToServer), srvToServer2, server, false},
		{"process withdrawn from a server to a server", withdrawn(proc(&srvToServer)), srvToServer2, server, false},
		{"process bridged into another group", proc(&bridgeBack), bridgeDef, client, true},
		{"process whose binding says audience \"\"", func() registry.Change {
			c := proc(nil)
			c.Binding.Audience = ""
			return c
		}(), srvToServer, server, true},
	}
	for _, tc := range cases {
		if got := exchange.Exports(tc.change, tc.to, tc.role); got != tc.want {
			origin := "own"
			if tc.change.Origin != nil {
				origin = tc.change.Origin.Info().ID
			}
			t.Errorf("%s: Exports(%v %q from %s, to %s as %v) = %v, want %v",
				tc.name, tc.change.Kind, tc.change.Binding.Audience, origin, tc.to.ID, tc.role, got, tc.want)
		}
	}
}
