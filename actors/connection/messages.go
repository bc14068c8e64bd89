package connection

// The control frames: hello, reject and bye, proof and accept, move,
// announce and group, ping.

import (
	"encoding/binary"
	"fmt"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// NonceSize is the size of the fresh random nonce in every hello.
const NonceSize = 32

// Hello is the first frame each way. It never holds a secret: a token is
// proven over both hellos' nonces afterwards (see Handshake).
type Hello struct {
	Protocol int
	Process  registry.ProcessID
	Node     string
	Role     registry.Role
	Group    string // exchange group
	Listen   string // the sender's exchange listen address, if it has one
	Nonce    [NonceSize]byte
	// Extensions are key/value pairs a later version may add (an
	// identity, features); unknown keys are ignored.
	Extensions []registry.Header
}

// maxExtensions bounds the extensions of one hello.
const maxExtensions = 64

// AppendHello appends a hello frame.
func AppendHello(b []byte, h Hello) []byte {
	n := 4 + uvarintLen(uint64(h.Protocol)) + 8 + stringLen(h.Node) + 1 + stringLen(h.Group) + stringLen(h.Listen) +
		NonceSize + uvarintLen(uint64(len(h.Extensions)))
	for _, x := range h.Extensions {
		n += stringLen(x.Key) + stringLen(x.Value)
	}
	b = appendHeader(b, FrameHello, n)
	b = append(b, Magic[:]...)
	b = binary.AppendUvarint(b, uint64(h.Protocol))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Process))
	b = appendString(b, h.Node)
	b = append(b, byte(h.Role))
	b = appendString(b, h.Group)
	b = appendString(b, h.Listen)
	b = append(b, h.Nonce[:]...)
	b = binary.AppendUvarint(b, uint64(len(h.Extensions)))
	for _, x := range h.Extensions {
		b = appendString(b, x.Key)
		b = appendString(b, x.Value)
	}
	return b
}

// VersionError is DecodeHello's error for a peer of another protocol
// version: the rest of its hello may be laid out differently, so it is
// not read.
type VersionError struct{ Peer int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version mismatch: peer speaks %d, this node %d", e.Peer, Protocol)
}

// DecodeHello reads a hello body.
func DecodeHello(body []byte) (Hello, error) {
	if len(body) < 4 || [4]byte(body[:4]) != Magic {
		return Hello{}, fmt.Errorf("not a netsvc peer: bad magic %q", prefix(body, 4))
	}
	r := reader{b: body[4:]}
	h := Hello{Protocol: int(min(r.uvarint(), 1<<30))}
	if r.err != nil {
		return Hello{}, fmt.Errorf("bad hello: %w", r.err)
	}
	if h.Protocol != Protocol {
		return Hello{}, &VersionError{Peer: h.Protocol}
	}
	h.Process = registry.ProcessID(r.uint64())
	h.Node = r.string()
	h.Role = registry.Role(r.byte())
	h.Group = r.string()
	h.Listen = r.string()
	copy(h.Nonce[:], r.fixed(NonceSize))
	n := r.uvarint()
	if n > maxExtensions {
		r.fail(fmt.Errorf("%d extensions", n))
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		h.Extensions = append(h.Extensions, registry.Header{Key: r.string(), Value: r.string()})
	}
	if err := r.done(); err != nil {
		return Hello{}, fmt.Errorf("bad hello: %w", err)
	}
	if h.Process == 0 {
		return Hello{}, fmt.Errorf("bad hello: no process id")
	}
	if h.Role != registry.RoleServer && h.Role != registry.RoleClient {
		return Hello{}, fmt.Errorf("bad hello: unknown role %d", h.Role)
	}
	return h, nil
}

func prefix(b []byte, n int) []byte {
	if len(b) < n {
		return b
	}
	return b[:n]
}

// AppendReason appends a reject or bye frame with its reason.
func AppendReason(b []byte, kind FrameKind, reason string) []byte {
	b = appendHeader(b, kind, stringLen(reason))
	return appendString(b, reason)
}

// DecodeReason reads a reject or bye body.
func DecodeReason(body []byte) (string, error) {
	r := reader{b: body}
	s := r.string()
	return s, r.done()
}

// AppendProof appends a proof frame (an empty proof without a token).
func AppendProof(b []byte, proof []byte) []byte {
	b = appendHeader(b, FrameProof, uvarintLen(uint64(len(proof)))+len(proof))
	b = binary.AppendUvarint(b, uint64(len(proof)))
	return append(b, proof...)
}

// DecodeProof reads a proof body; the result shares body's memory.
func DecodeProof(body []byte) ([]byte, error) {
	r := reader{b: body}
	p := r.bytes()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("bad proof: %w", err)
	}
	return p, nil
}

// AppendAccept appends the frame with which a dialler accepts the
// accepting side.
func AppendAccept(b []byte) []byte { return appendHeader(b, FrameAccept, 0) }

// MaxMoveServers bounds the servers of one move frame.
const MaxMoveServers = 64

// AppendMove appends a move frame: the servers a client should move to.
func AppendMove(b []byte, servers []string) []byte {
	n := uvarintLen(uint64(len(servers)))
	for _, s := range servers {
		n += stringLen(s)
	}
	b = appendHeader(b, FrameMove, n)
	b = binary.AppendUvarint(b, uint64(len(servers)))
	for _, s := range servers {
		b = appendString(b, s)
	}
	return b
}

// DecodeMove reads a move body.
func DecodeMove(body []byte) ([]string, error) {
	r := reader{b: body}
	n := r.uvarint()
	if n > MaxMoveServers {
		r.fail(fmt.Errorf("%d servers", n))
	}
	out := make([]string, 0, min(n, MaxMoveServers))
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.string())
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("bad move: %w", err)
	}
	return out, nil
}

// Announcement flags.
const (
	announceAvailable = 1
	announceWithdrawn = 2
	flagProcess       = 1
	flagDraining      = 2 // a withdrawal of a service that still answers what it took
)

// AppendAnnounce appends an announce frame for an Available or Withdrawn
// change of a binding or a process. Hops are the sender's own count.
func AppendAnnounce(b []byte, c registry.Change) []byte {
	flags := byte(0)
	if c.Process {
		flags |= flagProcess
	}
	if c.Draining && c.Kind == registry.Withdrawn {
		flags |= flagDraining
	}
	a := c.Binding.Address
	if c.Kind == registry.Withdrawn {
		b = appendHeader(b, FrameAnnounce, 2+16)
		b = append(b, announceWithdrawn, flags)
		b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
		return binary.BigEndian.AppendUint64(b, a.ID)
	}
	bd := c.Binding
	n := 2 + 16 + stringLen(bd.Name) + stringLen(bd.Audience) + stringLen(bd.Node) +
		uvarintLen(uint64(bd.Hops)) + uvarintLen(uint64(len(bd.Groups)))
	for _, g := range bd.Groups {
		n += stringLen(g)
	}
	b = appendHeader(b, FrameAnnounce, n)
	b = append(b, announceAvailable, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
	b = binary.BigEndian.AppendUint64(b, a.ID)
	b = appendString(b, bd.Name)
	b = appendString(b, bd.Audience)
	b = appendString(b, bd.Node)
	b = binary.AppendUvarint(b, uint64(bd.Hops))
	b = binary.AppendUvarint(b, uint64(len(bd.Groups)))
	for _, g := range bd.Groups {
		b = appendString(b, g)
	}
	return b
}

// maxGroups bounds the groups in one announcement, so a hostile count
// cannot make the decoder allocate without limit.
const maxGroups = 4096

// DecodeAnnounce reads an announce body into a change.
func DecodeAnnounce(body []byte) (registry.Change, error) {
	r := reader{b: body}
	kind, flags := r.byte(), r.byte()
	c := registry.Change{Process: flags&flagProcess != 0}
	c.Binding.Address = registry.Address{Process: registry.ProcessID(r.uint64()), ID: r.uint64()}
	switch kind {
	case announceWithdrawn:
		c.Kind = registry.Withdrawn
		c.Draining = flags&flagDraining != 0
	case announceAvailable:
		c.Kind = registry.Available
		c.Binding.Name = r.string()
		c.Binding.Audience = r.string()
		c.Binding.Node = r.string()
		c.Binding.Hops = int(min(r.uvarint(), 1<<16))
		ng := r.uvarint()
		if ng > maxGroups {
			r.fail(fmt.Errorf("%d groups in one announcement", ng))
		}
		c.Binding.Groups = make([]string, 0, min(ng, maxGroups))
		for i := uint64(0); i < ng && r.err == nil; i++ {
			c.Binding.Groups = append(c.Binding.Groups, r.string())
		}
	default:
		r.fail(fmt.Errorf("unknown announcement kind %d", kind))
	}
	if err := r.done(); err != nil {
		return registry.Change{}, fmt.Errorf("bad announce: %w", err)
	}
	if c.Binding.Address.Process == 0 {
		return registry.Change{}, fmt.Errorf("bad announce: no process id")
	}
	return c, nil
}

// AppendGroup appends a group frame: a binding joined or left a service group.
func AppendGroup(b []byte, c registry.Change) []byte {
	a := c.Binding.Address
	joined := byte(0)
	if c.Kind == registry.Joined {
		joined = 1
	}
	b = appendHeader(b, FrameGroup, 1+16+stringLen(c.Group))
	b = append(b, joined)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
	b = binary.BigEndian.AppendUint64(b, a.ID)
	return appendString(b, c.Group)
}

// DecodeGroup reads a group body.
func DecodeGroup(body []byte) (registry.Change, error) {
	r := reader{b: body}
	c := registry.Change{Kind: registry.Left}
	if r.byte() == 1 {
		c.Kind = registry.Joined
	}
	c.Binding.Address = registry.Address{Process: registry.ProcessID(r.uint64()), ID: r.uint64()}
	c.Group = r.string()
	if err := r.done(); err != nil {
		return registry.Change{}, fmt.Errorf("bad group frame: %w", err)
	}
	if c.Group == "" {
		return registry.Change{}, fmt.Errorf("bad group frame: no group")
	}
	return c, nil
}

// AppendPing appends a ping or pong frame.
func AppendPing(b []byte, kind FrameKind, nonce uint64) []byte {
	b = appendHeader(b, kind, uvarintLen(nonce))
	return binary.AppendUvarint(b, nonce)
}
