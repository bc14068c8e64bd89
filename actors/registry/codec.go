package registry

// Payloads and the CBOR codec: arguments, results, reports.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Content types of payloads.
const (
	ContentCBOR = "application/cbor"         // the default: values encoded by the codec
	ContentJSON = "application/json"         // used at HTTP edges
	ContentRaw  = "application/octet-stream" // bytes passed through untouched
)

// Raw is a payload the codec passes through unencoded. Pass it as the only
// argument, return it from a handler, or publish it, to move bytes with a
// content type of your own.
type Raw struct {
	ContentType string
	Data        []byte
}

var (
	encMode    cbor.UserBufferEncMode
	decMode    cbor.DecMode
	decModeAny cbor.DecMode // maps with keys of any type, for Value
)

func init() {
	var err error
	if encMode, err = (cbor.EncOptions{Time: cbor.TimeRFC3339Nano}).UserBufferEncMode(); err != nil {
		panic(err)
	}
	// Maps decode to map[string]any so generic values convert to JSON.
	if decMode, err = (cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil))}).DecMode(); err != nil {
		panic(err)
	}
	if decModeAny, err = (cbor.DecOptions{}).DecMode(); err != nil {
		panic(err)
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Payload is an encoded value with its content type: the result of a call,
// the value of a report.
type Payload struct {
	ContentType string
	Data        []byte
}

// Decode decodes the payload into v, a pointer. CBOR and JSON payloads
// decode into any Go value they fit; raw payloads only into *[]byte or *Raw.
func (p Payload) Decode(v any) error {
	switch p.ContentType {
	case ContentCBOR, "":
		if rest, ok := decodeFast(p.Data, v); ok && len(rest) == 0 {
			return nil
		}
		if err := decMode.Unmarshal(p.Data, v); err != nil {
			return fmt.Errorf("decode %s payload: %w", ContentCBOR, err)
		}
		return nil
	case ContentJSON:
		return json.Unmarshal(p.Data, v)
	default:
		switch t := v.(type) {
		case *[]byte:
			*t = p.Data
			return nil
		case *Raw:
			*t = Raw{ContentType: p.ContentType, Data: p.Data}
			return nil
		}
		return fmt.Errorf("decode %s payload into %T: want *[]byte or *service.Raw", p.ContentType, v)
	}
}

// Value decodes the payload into a generic Go value (maps, slices, strings,
// numbers), handy for printing or converting to JSON.
func (p Payload) Value() (any, error) {
	if p.ContentType != ContentCBOR && p.ContentType != "" && p.ContentType != ContentJSON {
		return p.Data, nil
	}
	var v any
	err := p.Decode(&v)
	if err != nil && (p.ContentType == ContentCBOR || p.ContentType == "") {
		// A map with keys that are not strings: decode it as it is and
		// spell its keys out, so the value still converts to JSON.
		var raw any
		if decModeAny.Unmarshal(p.Data, &raw) == nil {
			return stringKeys(raw), nil
		}
	}
	return v, err
}

// stringKeys turns map[any]any, anywhere in v, into map[string]any.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = stringKeys(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = stringKeys(x)
		}
	}
	return v
}

// Encode encodes a value as a payload: Raw passes through, anything else
// is CBOR.
func Encode(v any) (Payload, error) {
	if r, ok := v.(Raw); ok {
		ct := r.ContentType
		if ct == "" {
			ct = ContentRaw
		}
		return Payload{ContentType: ct, Data: r.Data}, nil
	}
	if b, ok := encodeFast(v); ok {
		return Payload{ContentType: ContentCBOR, Data: b}, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return Payload{}, err
	}
	return Payload{ContentType: ContentCBOR, Data: bytes.Clone(buf.Bytes())}, nil
}

// encodeArgs encodes call arguments as one CBOR array, or passes a single
// Raw argument through.
func encodeArgs(args []any) (Payload, error) {
	if len(args) == 1 {
		if r, ok := args[0].(Raw); ok {
			return Encode(r)
		}
	}
	if b, ok := encodeArgsFast(args); ok {
		return Payload{ContentType: ContentCBOR, Data: b}, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	buf.Write(appendArrayHeader(buf.AvailableBuffer(), len(args)))
	for i, a := range args {
		if err := encMode.MarshalToBuffer(a, buf); err != nil {
			return Payload{}, fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return Payload{ContentType: ContentCBOR, Data: bytes.Clone(buf.Bytes())}, nil
}

// EncodeArgs encodes call arguments the way Call does, for gateways that
// build requests themselves.
func EncodeArgs(args ...any) (Payload, error) { return encodeArgs(args) }

// appendArrayHeader appends a CBOR array head of n elements.
func appendArrayHeader(b []byte, n int) []byte {
	const major = 0x80
	switch {
	case n < 24:
		return append(b, byte(major|n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return append(b, major|25, byte(n>>8), byte(n))
	default:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// ReadArrayHeader reads the definite CBOR array head that starts an
// argument list: how many arguments follow, and them.
func ReadArrayHeader(b []byte) (n int, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("empty argument list: want a CBOR array")
	}
	if b[0]&0xe0 != 0x80 {
		return 0, nil, fmt.Errorf("arguments are not a CBOR array")
	}
	info := b[0] & 0x1f
	need := 0
	switch {
	case info < 24:
		return int(info), b[1:], nil
	case info == 24:
		need = 1
	case info == 25:
		need = 2
	case info == 26:
		need = 4
	default:
		return 0, nil, fmt.Errorf("argument array has an unsupported length form")
	}
	if len(b) < 1+need {
		return 0, nil, fmt.Errorf("argument array head is truncated")
	}
	for _, c := range b[1 : 1+need] {
		n = n<<8 | int(c)
	}
	return n, b[1+need:], nil
}

// DecodeNext decodes the CBOR value at the front of b into v (a
// pointer) and returns what follows: a method's arguments are read one
// at a time into storage the method reuses.
func DecodeNext(b []byte, v any) (rest []byte, err error) {
	if rest, ok := decodeFast(b, v); ok {
		return rest, nil
	}
	return decMode.UnmarshalFirst(b, v)
}
