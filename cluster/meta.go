package cluster

// What a member gossips about itself, and when another is compatible.

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// MetaMaxSize is the largest encoded Meta memberlist accepts, in bytes.
const MetaMaxSize = memberlist.MetaMaxSize

// Roles of a member (Meta.Role).
const (
	RoleServer = "server" // an exchange server: listens, and is meshed with the other servers
	RoleClient = "client" // an exchange client (not meshed; reserved for later)
)

// Meta is what a member gossips about itself. It is encoded as JSON and must
// fit in MetaMaxSize bytes. Node, Process, Protocol and Cluster are fixed for
// the life of a member; the others may change with Cluster.UpdateMeta.
type Meta struct {
	Process  string `json:"process,omitempty"`  // the node's process id (16 hex digits), unique per start
	Node     string `json:"node"`               // logical node name; required
	Exchange string `json:"exchange,omitempty"` // exchange TCP listen address host:port, "" if none
	Group    string `json:"group,omitempty"`    // exchange group, "" for the default group
	Role     string `json:"role,omitempty"`     // RoleServer or RoleClient; only servers are meshed
	Console  string `json:"console,omitempty"`  // console address, "" if none
	Version  string `json:"version,omitempty"`  // software version, for display
	Protocol int    `json:"protocol"`           // wire protocol version: members with another one are ignored
	Cluster  string `json:"cluster,omitempty"`  // cluster name ("" = DefaultCluster): members of another are ignored
}

// normalized returns m with defaults filled in.
func (m Meta) normalized() Meta {
	if m.Cluster == "" {
		m.Cluster = DefaultCluster
	}
	return m
}

// encode returns m's wire form, or an error when it is too large.
func (m Meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode metadata: %w", err)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("cluster: metadata of node %q is %d bytes encoded; memberlist allows %d", m.Node, len(b), MetaMaxSize)
	}
	return b, nil
}

// decodeMeta parses a member's metadata as gossiped. Unknown fields are
// ignored, so newer members may add some.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, errors.New("no metadata")
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, err
	}
	if m.Node == "" {
		return Meta{}, errors.New("metadata has no node name")
	}
	return m.normalized(), nil
}

// incompatibility says why a member with metadata raw must be ignored by a
// member whose own metadata is self, or returns "" when it is compatible.
func incompatibility(self Meta, raw []byte) string {
	m, err := decodeMeta(raw)
	if err != nil {
		return "undecodable metadata: " + err.Error()
	}
	if m.Cluster != self.Cluster {
		return fmt.Sprintf("cluster %q, this member is in %q", m.Cluster, self.Cluster)
	}
	if m.Protocol != self.Protocol {
		return fmt.Sprintf("protocol %d, this member speaks %d", m.Protocol, self.Protocol)
	}
	return ""
}
