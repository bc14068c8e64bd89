package connection

// The envelope frame: what services send each other, laid out so a
// relay routes it without decoding it, and the decoders a link and a
// service read it with.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Envelope frame layout after the frame's kind byte: envelope kind, hop
// count, flags, then the destination's process and service id, the
// source's process and service id (8 bytes each, at fixed offsets so
// relays route without decoding), then the conversation and sequence
// (uvarints), the time left in microseconds (8 bytes, with
// envDeadline), headers (with envHeaders: a count, then key and value
// strings), subject, pattern and content type (strings), then the data.
// The pattern is left out when it is the subject (envPatternIsSubject),
// the content type when it is one of the codec's three (its code in the
// flags): a 100-byte report then costs 148 bytes on the wire, not 182.
const (
	envHopsOffset    = 1
	envFlagsOffset   = 2
	envToProcOffset  = 3
	envToIDOffset    = 11
	envFromOffset    = 19
	envFixedOverhead = 35
	maxRelayHops     = 16
	maxHeaders       = 64

	envDeadline = 1 << 0 // the time the request has left follows the sequence
	envNotRun   = 1 << 1 // a failure for a request that never reached a handler
	envHeaders  = 1 << 2 // headers follow (the deadline, if any)
	// No pattern field: the pattern is the subject (a subscription to
	// the exact subject).
	envPatternIsSubject = 1 << 3
	// Bits 4-5: a well-known content type (contentTypes) in place of the
	// field; 0 when the field follows.
	envContentShift = 4
	envContentMask  = 3 << envContentShift
	envKnown        = envDeadline | envNotRun | envHeaders | envPatternIsSubject | envContentMask
)

// contentTypes are the content types a code in an envelope's flags
// stands for (index 0: the field is on the wire).
var contentTypes = [4]string{1: registry.ContentCBOR, 2: registry.ContentJSON, 3: registry.ContentRaw}

// contentCode is ct's code in envelope flags, 0 when it has none.
func contentCode(ct string) byte {
	for code := 1; code < len(contentTypes); code++ {
		if ct == contentTypes[code] {
			return byte(code)
		}
	}
	return 0
}

// patternIsSubject reports whether e's pattern is left off the wire.
func patternIsSubject(e *registry.Envelope) bool {
	return e.Pattern != "" && e.Pattern == e.Subject
}

// EnvelopeSize returns the frame size of an envelope.
func EnvelopeSize(e *registry.Envelope) int {
	n := bodySize(e)
	return headerLen(n) + n
}

func bodySize(e *registry.Envelope) int {
	n := envFixedOverhead + uvarintLen(e.Conv) + uvarintLen(e.Seq) + stringLen(e.Subject) + len(e.Data)
	if !patternIsSubject(e) {
		n += stringLen(e.Pattern)
	}
	if contentCode(e.ContentType) == 0 {
		n += stringLen(e.ContentType)
	}
	if e.Deadline != 0 || len(e.Headers) != 0 {
		n += extensionsSize(e)
	}
	return n
}

// extensionsSize is the size of the optional fields.
func extensionsSize(e *registry.Envelope) int {
	n := 0
	if e.Deadline != 0 {
		n += 8
	}
	if len(e.Headers) != 0 {
		n += uvarintLen(uint64(len(e.Headers)))
		for _, h := range e.Headers {
			n += stringLen(h.Key) + stringLen(h.Value)
		}
	}
	return n
}

// AppendEnvelope appends an envelope frame.
func AppendEnvelope(b []byte, e *registry.Envelope) []byte {
	return appendEnvelopeSized(b, e, bodySize(e))
}

// appendEnvelopeSized is AppendEnvelope with the body size known. A
// deadline is written as the time left now.
func appendEnvelopeSized(b []byte, e *registry.Envelope, body int) []byte {
	b = appendHeader(b, FrameEnvelope, body)
	flags := byte(0)
	if e.Deadline != 0 {
		flags |= envDeadline
	}
	if e.NotRun {
		flags |= envNotRun
	}
	if len(e.Headers) != 0 {
		flags |= envHeaders
	}
	samePattern := patternIsSubject(e)
	if samePattern {
		flags |= envPatternIsSubject
	}
	code := contentCode(e.ContentType)
	flags |= code << envContentShift
	b = append(b, byte(e.Kind), 0, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(e.To.Process))
	b = binary.BigEndian.AppendUint64(b, e.To.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.From.Process))
	b = binary.BigEndian.AppendUint64(b, e.From.ID)
	b = binary.AppendUvarint(b, e.Conv)
	b = binary.AppendUvarint(b, e.Seq)
	if flags&(envDeadline|envHeaders) != 0 {
		b = appendExtensions(b, e)
	}
	b = appendString(b, e.Subject)
	if !samePattern {
		b = appendString(b, e.Pattern)
	}
	if code == 0 {
		b = appendString(b, e.ContentType)
	}
	return append(b, e.Data...)
}

func appendExtensions(b []byte, e *registry.Envelope) []byte {
	if e.Deadline != 0 {
		left := max((e.Deadline-time.Now().UnixNano())/1e3, 1) // expired: 1 µs, the peer fails it at once
		b = binary.BigEndian.AppendUint64(b, uint64(left))
	}
	if len(e.Headers) != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Headers)))
		for _, h := range e.Headers {
			b = appendString(b, h.Key)
			b = appendString(b, h.Value)
		}
	}
	return b
}

// envelopeRoute reads what a relay needs from an envelope body without
// decoding it: its kind, hop count, destination and source processes.
func envelopeRoute(body []byte) (kind registry.Kind, hops int, to registry.Address, from registry.ProcessID, ok bool) {
	if len(body) < envFixedOverhead {
		return 0, 0, registry.Address{}, 0, false
	}
	kind = registry.Kind(body[0])
	hops = int(body[envHopsOffset])
	to.Process = registry.ProcessID(binary.BigEndian.Uint64(body[envToProcOffset:]))
	to.ID = binary.BigEndian.Uint64(body[envToIDOffset:])
	from = registry.ProcessID(binary.BigEndian.Uint64(body[envFromOffset:]))
	return kind, hops, to, from, kind.Valid()
}

// DecodeFrame decodes the envelope frame at the front of b into e
// without copying: e's strings and data share b's memory, which must
// never change afterwards. It is how a service's actor reads a batch of
// envelopes a link handed over in one piece. A deadline is counted from
// now; DecodeFrameAt counts it from when the frame arrived.
func DecodeFrame(b []byte, e *registry.Envelope) (rest []byte, err error) {
	return decodeFrame(b, e, 0)
}

// DecodeFrameAt returns DecodeFrame counting deadlines from received
// (Unix ns), when the frames it decodes arrived: a batch decoded later
// in its service's actor keeps its requests' deadlines, and costs no
// clock reading per envelope.
func DecodeFrameAt(received int64) func(b []byte, e *registry.Envelope) ([]byte, error) {
	return func(b []byte, e *registry.Envelope) ([]byte, error) { return decodeFrame(b, e, received) }
}

// decodeFrame is DecodeFrame with deadlines counted from now (Unix ns;
// 0 for the clock's now).
func decodeFrame(b []byte, e *registry.Envelope, now int64) (rest []byte, err error) {
	kind, body, n, err := splitFrame(b, len(b))
	if err != nil {
		return nil, err
	}
	if n == 0 || kind != FrameEnvelope || len(body) < envFixedOverhead {
		return nil, errors.New("bad envelope batch")
	}
	// A straight-line decoder: this runs once per envelope a service
	// receives over a link.
	e.Kind = registry.Kind(body[0])
	if !e.Kind.Valid() {
		return nil, fmt.Errorf("bad envelope: unknown kind %d", e.Kind)
	}
	flags := body[envFlagsOffset]
	if flags&^envKnown != 0 {
		return nil, errBadFlags
	}
	e.To.Process = registry.ProcessID(binary.BigEndian.Uint64(body[envToProcOffset:]))
	e.To.ID = binary.BigEndian.Uint64(body[envToIDOffset:])
	e.From.Process = registry.ProcessID(binary.BigEndian.Uint64(body[envFromOffset:]))
	e.From.ID = binary.BigEndian.Uint64(body[envFromOffset+8:])
	p := body[envFixedOverhead:]
	var v uint64
	var k int
	if e.Conv, k = uvarint(p); k <= 0 {
		return nil, errTruncated
	}
	p = p[k:]
	if e.Seq, k = uvarint(p); k <= 0 {
		return nil, errTruncated
	}
	p = p[k:]
	e.NotRun = flags&envNotRun != 0
	e.Deadline, e.Headers = 0, nil
	if flags&(envDeadline|envHeaders) != 0 {
		if p, err = decodeExtensions(p, flags, e, false, now); err != nil {
			return nil, err
		}
	}
	var s [3]string // subject, pattern, content type
	for i := range s {
		if i == 1 && flags&envPatternIsSubject != 0 {
			s[1] = s[0]
			continue
		}
		if i == 2 && flags&envContentMask != 0 {
			s[2] = contentTypes[flags>>envContentShift&3]
			continue
		}
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

// decodeExtensions reads the optional fields flags announce into e (with
// check, only validates them) and returns what follows. Header strings
// share p's memory unless copy is set.
func decodeExtensions(p []byte, flags byte, e *registry.Envelope, copyStrings bool, now int64) ([]byte, error) {
	if flags&envDeadline != 0 {
		if len(p) < 8 {
			return nil, errTruncated
		}
		left := binary.BigEndian.Uint64(p)
		p = p[8:]
		if e != nil {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			e.Deadline = now + int64(min(left, 1<<50))*1e3
		}
	}
	if flags&envHeaders != 0 {
		n, k := uvarint(p)
		if k <= 0 {
			return nil, errTruncated
		}
		if n > maxHeaders {
			return nil, fmt.Errorf("bad envelope: %d headers", n)
		}
		p = p[k:]
		if e != nil && n > 0 { // none stays nil, as an envelope without the flag decodes
			e.Headers = make([]registry.Header, 0, n)
		}
		for i := uint64(0); i < n; i++ {
			var kv [2]string
			for j := range kv {
				v, k := uvarint(p)
				if k <= 0 || v > uint64(len(p)-k) {
					return nil, errTruncated
				}
				if copyStrings {
					kv[j] = string(p[k : k+int(v)])
				} else {
					kv[j] = unsafeString(p[k : k+int(v)])
				}
				p = p[k+int(v):]
			}
			if e != nil {
				e.Headers = append(e.Headers, registry.Header{Key: kv[0], Value: kv[1]})
			}
		}
	}
	return p, nil
}

// checkEnvelope validates an envelope body exactly as DecodeFrame does,
// without decoding it: a link checks every envelope it hands to a service
// still encoded (bad input closes the link, it never reaches a service),
// and the service's own decoding should be the only one that writes.
func checkEnvelope(body []byte) error {
	if len(body) < envFixedOverhead {
		return errors.New("bad envelope batch")
	}
	if k := registry.Kind(body[0]); !k.Valid() {
		return fmt.Errorf("bad envelope: unknown kind %d", k)
	}
	flags := body[envFlagsOffset]
	if flags&^envKnown != 0 {
		return errBadFlags
	}
	p := body[envFixedOverhead:]
	for range 2 { // conversation, sequence
		_, k := uvarint(p)
		if k <= 0 {
			return errTruncated
		}
		p = p[k:]
	}
	if flags&(envDeadline|envHeaders) != 0 {
		var err error
		if p, err = decodeExtensions(p, flags, nil, false, 0); err != nil {
			return err
		}
	}
	for range stringFields(flags) {
		v, k := uvarint(p)
		if k <= 0 || v > uint64(len(p)-k) {
			return errTruncated
		}
		p = p[k+int(v):]
	}
	return nil
}

// uvarint is binary.Uvarint with the one-byte case, by far the most
// common in envelopes (short strings, small sequences), first.
func uvarint(p []byte) (uint64, int) {
	if len(p) > 0 && p[0] < 0x80 {
		return uint64(p[0]), 1
	}
	return binary.Uvarint(p)
}

var errBadFlags = errors.New("bad envelope: unknown flags")

// stringFields is how many of subject, pattern and content type an
// envelope with these flags carries as strings.
func stringFields(flags byte) int {
	n := 3
	if flags&envPatternIsSubject != 0 {
		n--
	}
	if flags&envContentMask != 0 {
		n--
	}
	return n
}

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
func DecodeEnvelope(body []byte, interned internTable) (*registry.Envelope, error) {
	e := &registry.Envelope{}
	if err := decodeEnvelopeInto(e, body, interned, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeEnvelopeInto decodes into e; the data is copied into memory from
// alloc (a fresh slice when nil).
func decodeEnvelopeInto(e *registry.Envelope, body []byte, interned internTable, alloc func(n int) []byte) error {
	r := reader{b: body}
	e.Kind = registry.Kind(r.byte())
	r.byte() // hops: only relays care
	flags := r.byte()
	e.To = registry.Address{Process: registry.ProcessID(r.uint64()), ID: r.uint64()}
	e.From = registry.Address{Process: registry.ProcessID(r.uint64()), ID: r.uint64()}
	e.Conv = r.uvarint()
	e.Seq = r.uvarint()
	if r.err != nil {
		return fmt.Errorf("bad envelope: %w", r.err)
	}
	if !e.Kind.Valid() {
		return fmt.Errorf("bad envelope: unknown kind %d", e.Kind)
	}
	if flags&^envKnown != 0 {
		return errBadFlags
	}
	e.NotRun = flags&envNotRun != 0
	e.Deadline, e.Headers = 0, nil
	if flags&(envDeadline|envHeaders) != 0 {
		rest, err := decodeExtensions(r.b, flags, e, true, 0)
		if err != nil {
			return err
		}
		r.b = rest
	}
	subject := r.bytes()
	var pattern, ctype []byte
	if flags&envPatternIsSubject == 0 {
		pattern = r.bytes()
	}
	if flags&envContentMask == 0 {
		ctype = r.bytes()
	}
	data := r.rest()
	if r.err != nil {
		return fmt.Errorf("bad envelope: %w", r.err)
	}
	if interned != nil {
		e.Subject, e.Pattern, e.ContentType = interned.get(subject), interned.get(pattern), interned.get(ctype)
	} else {
		e.Subject, e.Pattern, e.ContentType = string(subject), string(pattern), string(ctype)
	}
	if flags&envPatternIsSubject != 0 {
		e.Pattern = e.Subject
	}
	if code := flags >> envContentShift & 3; code != 0 {
		e.ContentType = contentTypes[code]
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
