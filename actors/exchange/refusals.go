package exchange

// Why connections were turned away before they were up, counted by
// reason.

import (
	"strings"
	"sync/atomic"

	"github.com/netsvc-go/netsvc/actors/connection"
)

// refusal is why an exchange turned a connection away before it was up;
// the values are the label the metrics use (fixed words, never what a
// peer sent).
type refusal int

const (
	refusedBusy      refusal = iota // too many connections in their handshake
	refusedAdmission                // the Admit hook said no
	refusedTLS                      // the TLS handshake failed
	refusedToken                    // no proof, or a wrong one, of the token
	refusedGroup                    // another exchange group
	refusedProtocol                 // another protocol version, or not netsvc at all
	refusedOther                    // anything else (a client dialling a client, itself)
	refusalKinds
)

var refusalNames = [refusalKinds]string{"busy", "admission", "tls", "token", "group", "protocol", "other"}

func (r refusal) String() string { return refusalNames[r] }

// classify names the refusal a link's close reason tells of.
func classify(reason string) refusal {
	switch {
	case strings.Contains(reason, "not authorised"):
		return refusedToken
	case strings.Contains(reason, "group mismatch"):
		return refusedGroup
	case strings.Contains(reason, "protocol version"), strings.Contains(reason, "not a netsvc peer"):
		return refusedProtocol
	case strings.Contains(reason, "TLS"):
		return refusedTLS
	}
	return refusedOther
}

type refusalCounts [refusalKinds]atomic.Uint64

func (c *refusalCounts) add(r refusal) { c[r].Add(1) }

// Refusals returns how many connections the exchange turned away before
// they were up, by reason: busy (too many in their handshake), admission,
// tls, token, group, protocol, other.
func (x *Exchange) Refusals() map[string]uint64 {
	out := make(map[string]uint64, refusalKinds)
	for r := range refusalKinds {
		out[r.String()] = x.refusals[r].Load()
	}
	return out
}

// Budget returns the node's budget the exchange draws on.
func (x *Exchange) Budget() *connection.Budget { return x.cfg.Budget }
