package connection

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/netsvc-go/netsvc/service"
)

// Hello is the first frame each way.
type Hello struct {
	Protocol int
	Process  service.ProcessID
	Node     string
	Role     service.Role
	Group    string // exchange group
	Token    string // shared secret, when the server asks for one
	Listen   string // the sender's exchange listen address, if it has one
}

// AppendHello appends a hello frame.
func AppendHello(b []byte, h Hello) []byte {
	n := 4 + uvarintLen(uint64(h.Protocol)) + 8 + stringLen(h.Node) + 1 + stringLen(h.Group) + stringLen(h.Token) + stringLen(h.Listen)
	b = appendHeader(b, FrameHello, n)
	b = append(b, Magic[:]...)
	b = binary.AppendUvarint(b, uint64(h.Protocol))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Process))
	b = appendString(b, h.Node)
	b = append(b, byte(h.Role))
	b = appendString(b, h.Group)
	b = appendString(b, h.Token)
	return appendString(b, h.Listen)
}

// DecodeHello reads a hello body.
func DecodeHello(body []byte) (Hello, error) {
	if len(body) < 4 || [4]byte(body[:4]) != Magic {
		return Hello{}, fmt.Errorf("not a netsvc peer: bad magic %q", prefix(body, 4))
	}
	r := reader{b: body[4:]}
	h := Hello{Protocol: int(r.uvarint()), Process: service.ProcessID(r.uint64()), Node: r.string(),
		Role: service.Role(r.byte()), Group: r.string(), Token: r.string(), Listen: r.string()}
	if err := r.done(); err != nil {
		return Hello{}, fmt.Errorf("bad hello: %w", err)
	}
	if h.Process == 0 {
		return Hello{}, fmt.Errorf("bad hello: no process id")
	}
	if h.Role != service.RoleServer && h.Role != service.RoleClient {
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

// Announcement flags.
const (
	announceAvailable = 1
	announceWithdrawn = 2
	flagProcess       = 1
)

// AppendAnnounce appends an announce frame for an Available or Withdrawn
// change of a binding or a process. Hops are the sender's own count.
func AppendAnnounce(b []byte, c service.Change) []byte {
	flags := byte(0)
	if c.Process {
		flags |= flagProcess
	}
	a := c.Binding.Address
	if c.Kind == service.Withdrawn {
		n := 2 + 8 + uvarintLen(uint64(a.ID))
		b = appendHeader(b, FrameAnnounce, n)
		b = append(b, announceWithdrawn, flags)
		b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
		return binary.AppendUvarint(b, uint64(a.ID))
	}
	bd := c.Binding
	n := 2 + 8 + uvarintLen(uint64(a.ID)) + stringLen(bd.Name) + stringLen(bd.Audience) + stringLen(bd.Node) +
		uvarintLen(uint64(bd.Hops)) + uvarintLen(uint64(len(bd.Groups)))
	for _, g := range bd.Groups {
		n += stringLen(g)
	}
	b = appendHeader(b, FrameAnnounce, n)
	b = append(b, announceAvailable, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
	b = binary.AppendUvarint(b, uint64(a.ID))
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
func DecodeAnnounce(body []byte) (service.Change, error) {
	r := reader{b: body}
	kind, flags := r.byte(), r.byte()
	c := service.Change{Process: flags&flagProcess != 0}
	c.Binding.Address = service.Address{Process: service.ProcessID(r.uint64())}
	id := r.uvarint()
	if id > 1<<32-1 {
		r.fail(fmt.Errorf("service id %d out of range", id))
	}
	c.Binding.Address.ID = uint32(id)
	switch kind {
	case announceWithdrawn:
		c.Kind = service.Withdrawn
	case announceAvailable:
		c.Kind = service.Available
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
		return service.Change{}, fmt.Errorf("bad announce: %w", err)
	}
	if c.Binding.Address.Process == 0 {
		return service.Change{}, fmt.Errorf("bad announce: no process id")
	}
	return c, nil
}

// AppendGroup appends a group frame: a binding joined or left a service group.
func AppendGroup(b []byte, c service.Change) []byte {
	a := c.Binding.Address
	joined := byte(0)
	if c.Kind == service.Joined {
		joined = 1
	}
	b = appendHeader(b, FrameGroup, 1+8+uvarintLen(uint64(a.ID))+stringLen(c.Group))
	b = append(b, joined)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Process))
	b = binary.AppendUvarint(b, uint64(a.ID))
	return appendString(b, c.Group)
}

// DecodeGroup reads a group body.
func DecodeGroup(body []byte) (service.Change, error) {
	r := reader{b: body}
	c := service.Change{Kind: service.Left}
	if r.byte() == 1 {
		c.Kind = service.Joined
	}
	c.Binding.Address.Process = service.ProcessID(r.uint64())
	id := r.uvarint()
	c.Binding.Address.ID = uint32(id)
	c.Group = r.string()
	if err := r.done(); err != nil {
		return service.Change{}, fmt.Errorf("bad group frame: %w", err)
	}
	if id > 1<<32-1 || c.Group == "" {
		return service.Change{}, fmt.Errorf("bad group frame")
	}
	return c, nil
}

// Envelope frame layout after the kind byte: envelope kind, hop count,
// destination process (8 bytes, at a fixed offset so relays can route
// without decoding), destination id, source process, source id,
// conversation, sequence, subject, pattern, content type, then the data.
const (
	envHopsOffset    = 1
	envToProcOffset  = 2
	maxRelayHops     = 16
	envFixedOverhead = 1 + 1 + 8 + 8
)

// EnvelopeSize returns the frame size of an envelope.
func EnvelopeSize(e *service.Envelope) int {
	n := bodySize(e)
	return headerLen(n) + n
}

func bodySize(e *service.Envelope) int {
	return envFixedOverhead + uvarintLen(uint64(e.To.ID)) + uvarintLen(uint64(e.From.ID)) +
		uvarintLen(e.Conv) + uvarintLen(e.Seq) + stringLen(e.Subject) + stringLen(e.Pattern) +
		stringLen(e.ContentType) + len(e.Data)
}

// AppendEnvelope appends an envelope frame.
func AppendEnvelope(b []byte, e *service.Envelope) []byte {
	return appendEnvelopeSized(b, e, bodySize(e))
}

// appendEnvelopeSized is AppendEnvelope with the body size known.
func appendEnvelopeSized(b []byte, e *service.Envelope, body int) []byte {
	b = appendHeader(b, FrameEnvelope, body)
	b = append(b, byte(e.Kind), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(e.To.Process))
	b = binary.AppendUvarint(b, uint64(e.To.ID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.From.Process))
	b = binary.AppendUvarint(b, uint64(e.From.ID))
	b = binary.AppendUvarint(b, e.Conv)
	b = binary.AppendUvarint(b, e.Seq)
	b = appendString(b, e.Subject)
	b = appendString(b, e.Pattern)
	b = appendString(b, e.ContentType)
	return append(b, e.Data...)
}

// envelopeRoute reads what a relay needs from an envelope body without
// decoding it: its kind, hop count, destination and source processes.
func envelopeRoute(body []byte) (kind service.Kind, hops int, to service.Address, from service.ProcessID, ok bool) {
	if len(body) < envToProcOffset+8 {
		return 0, 0, service.Address{}, 0, false
	}
	kind = service.Kind(body[0])
	hops = int(body[envHopsOffset])
	to.Process = service.ProcessID(binary.BigEndian.Uint64(body[envToProcOffset:]))
	rest := body[envToProcOffset+8:]
	id, n := binary.Uvarint(rest)
	if n <= 0 || len(rest) < n+8 || id > 1<<32-1 {
		return 0, 0, service.Address{}, 0, false
	}
	to.ID = uint32(id)
	from = service.ProcessID(binary.BigEndian.Uint64(rest[n:]))
	return kind, hops, to, from, kind.Valid()
}

// DecodeFrame decodes the envelope frame at the front of b into e
// without copying: e's strings and data share b's memory, which must
// never change afterwards. It is how a service's actor reads a batch of
// envelopes a link handed over in one piece.
func DecodeFrame(b []byte, e *service.Envelope) (rest []byte, err error) {
	kind, body, n, err := splitFrame(b, len(b))
	if err != nil {
		return nil, err
	}
	if n == 0 || kind != FrameEnvelope || len(body) < envFixedOverhead {
		return nil, errors.New("bad envelope batch")
	}
	// A straight-line decoder: this runs once per envelope a service
	// receives over a link.
	e.Kind = service.Kind(body[0])
	if !e.Kind.Valid() {
		return nil, fmt.Errorf("bad envelope: unknown kind %d", e.Kind)
	}
	e.To.Process = service.ProcessID(binary.BigEndian.Uint64(body[2:]))
	p := body[10:]
	var v uint64
	var k int
	if v, k = uvarint(p); k <= 0 || len(p) < k+8 {
		return nil, errTruncated
	}
	if v > 1<<32-1 {
		return nil, errBadID
	}
	e.To.ID = uint32(v)
	e.From.Process = service.ProcessID(binary.BigEndian.Uint64(p[k:]))
	p = p[k+8:]
	if v, k = uvarint(p); k <= 0 {
		return nil, errTruncated
	}
	if v > 1<<32-1 {
		return nil, errBadID
	}
	e.From.ID = uint32(v)
	p = p[k:]
	if e.Conv, k = uvarint(p); k <= 0 {
		return nil, errTruncated
	}
	p = p[k:]
	if e.Seq, k = uvarint(p); k <= 0 {
		return nil, errTruncated
	}
	p = p[k:]
	var s [3]string
	for i := range s {
		if v, k = uvarint(p); k <= 0 || v > uint64(len(p)-k) {
			return nil, errTruncated
		}
		s[i] = unsafeString(p[k : k+int(v)])
		p = p[k+int(v):]
	}
	e.Subject, e.Pattern, e.ContentType = s[0], s[1], s[2]
	if len(p) == 0 {
		e.Data = nil
	} else {
		e.Data = p[:len(p):len(p)]
	}
	return b[n:], nil
}

// checkEnvelope validates an envelope body exactly as DecodeFrame does,
// without decoding it: a link checks every envelope it hands to a service
// still encoded (bad input closes the link, it never reaches a service),
// and the service's own decoding should be the only one that writes.
func checkEnvelope(body []byte) error {
	if len(body) < envFixedOverhead {
		return errors.New("bad envelope batch")
	}
	if k := service.Kind(body[0]); !k.Valid() {
		return fmt.Errorf("bad envelope: unknown kind %d", k)
	}
	p := body[10:]
	v, k := uvarint(p)
	if k <= 0 || len(p) < k+8 {
		return errTruncated
	}
	if v > 1<<32-1 {
		return errBadID
	}
	p = p[k+8:]
	if v, k = uvarint(p); k <= 0 {
		return errTruncated
	}
	if v > 1<<32-1 {
		return errBadID
	}
	p = p[k:]
	for range 2 { // conversation, sequence
		if _, k = uvarint(p); k <= 0 {
			return errTruncated
		}
		p = p[k:]
	}
	for range 3 { // subject, pattern, content type
		if v, k = uvarint(p); k <= 0 || v > uint64(len(p)-k) {
			return errTruncated
		}
		p = p[k+int(v):]
	}
	return nil
}

// uvarint is binary.Uvarint with the one-byte case, by far the most
// common in envelopes (small ids, short strings), first.
func uvarint(p []byte) (uint64, int) {
	if len(p) > 0 && p[0] < 0x80 {
		return uint64(p[0]), 1
	}
	return binary.Uvarint(p)
}

var errBadID = errors.New("bad envelope: service id out of range")

// unsafeString views b as a string without copying; b must never change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// internTable keeps the strings an envelope stream repeats (content
// types, method names, subjects) so decoding them does not allocate.
type internTable map[string]string

const maxInterned = 1024

func (t internTable) get(b []byte) string {
	if s, ok := t[string(b)]; ok { // no allocation: the compiler spots the lookup
		return s
	}
	s := string(b)
	if len(t) < maxInterned && len(b) <= 64 {
		t[s] = s
	}
	return s
}

// DecodeEnvelope reads an envelope body. The data is copied, so body may
// be reused. interned may be nil.
func DecodeEnvelope(body []byte, interned internTable) (*service.Envelope, error) {
	e := &service.Envelope{}
	if err := decodeEnvelopeInto(e, body, interned, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeEnvelopeInto decodes into e; the data is copied into memory from
// alloc (a fresh slice when nil).
func decodeEnvelopeInto(e *service.Envelope, body []byte, interned internTable, alloc func(n int) []byte) error {
	r := reader{b: body}
	e.Kind = service.Kind(r.byte())
	r.byte() // hops: only relays care
	e.To.Process = service.ProcessID(r.uint64())
	toID := r.uvarint()
	e.From.Process = service.ProcessID(r.uint64())
	fromID := r.uvarint()
	e.Conv = r.uvarint()
	e.Seq = r.uvarint()
	subject, pattern, ctype := r.bytes(), r.bytes(), r.bytes()
	data := r.rest()
	if r.err != nil {
		return fmt.Errorf("bad envelope: %w", r.err)
	}
	if !e.Kind.Valid() {
		return fmt.Errorf("bad envelope: unknown kind %d", e.Kind)
	}
	if toID > 1<<32-1 || fromID > 1<<32-1 {
		return fmt.Errorf("bad envelope: service id out of range")
	}
	e.To.ID, e.From.ID = uint32(toID), uint32(fromID)
	if interned != nil {
		e.Subject, e.Pattern, e.ContentType = interned.get(subject), interned.get(pattern), interned.get(ctype)
	} else {
		e.Subject, e.Pattern, e.ContentType = string(subject), string(pattern), string(ctype)
	}
	e.Data = nil
	if len(data) > 0 {
		if alloc != nil {
			e.Data = alloc(len(data))
			copy(e.Data, data)
		} else {
			e.Data = append([]byte(nil), data...)
		}
	}
	return nil
}

// AppendPing appends a ping or pong frame.
func AppendPing(b []byte, kind FrameKind, nonce uint64) []byte {
	b = appendHeader(b, kind, uvarintLen(nonce))
	return binary.AppendUvarint(b, nonce)
}
