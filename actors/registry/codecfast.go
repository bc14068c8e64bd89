package registry

// The codec's fast path for the commonest values, byte slices and
// strings: encoded and decoded by hand, byte for byte as the CBOR codec
// does, without its reflection. Profiles of the request/reply benchmark
// put the codec's per-call work for one []byte argument and result at a
// tenth of a service's time.

import (
	"encoding/binary"
	"unicode/utf8"
)

// CBOR major types and the simple value null.
const (
	cborBytes = 0x40
	cborText  = 0x60
	cborNull  = 0xf6
)

// fastSize returns the encoded size of v when the fast path encodes it.
func fastSize(v any) (int, bool) {
	switch t := v.(type) {
	case []byte:
		if t == nil {
			return 1, true
		}
		return headLen(uint64(len(t))) + len(t), true
	case string:
		return headLen(uint64(len(t))) + len(t), true
	}
	return 0, false
}

// appendFast appends v when it is a byte slice or a string (a nil slice
// is null, as the codec writes it); ok is false for anything else.
func appendFast(b []byte, v any) (_ []byte, ok bool) {
	switch t := v.(type) {
	case []byte:
		if t == nil {
			return append(b, cborNull), true
		}
		return append(appendHead(b, cborBytes, uint64(len(t))), t...), true
	case string:
		return append(appendHead(b, cborText, uint64(len(t))), t...), true
	}
	return b, false
}

// headLen is the size of a CBOR head holding n.
func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// appendHead appends a CBOR head of the major type with argument n, in
// its shortest form (as the codec writes it).
func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, major|27), n)
}

// encodeFast encodes v alone, or args as an argument array, when every
// value takes the fast path, into one allocation of the exact size.
func encodeFast(v any) ([]byte, bool) {
	n, ok := fastSize(v)
	if !ok {
		return nil, false
	}
	return appendFast(make([]byte, 0, n), v)
}

func encodeArgsFast(args []any) ([]byte, bool) {
	n := headLen(uint64(len(args)))
	for _, a := range args {
		s, ok := fastSize(a)
		if !ok {
			return nil, false
		}
		n += s
	}
	b := appendHead(make([]byte, 0, n), 0x80, uint64(len(args)))
	for _, a := range args {
		var ok bool
		if b, ok = appendFast(b, a); !ok {
			return nil, false
		}
	}
	return b, true
}

// decodeFast decodes the value at the front of b into v when v is a
// *[]byte or *string and the value a definite byte or text string (or
// null for a byte slice); ok is false otherwise, and the codec decodes
// it. The bytes are copied: the value is the handler's to keep. A text
// string must be valid UTF-8, as the codec requires.
func decodeFast(b []byte, v any) (rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch t := v.(type) {
	case *[]byte:
		if b[0] == cborNull {
			*t = nil
			return b[1:], true
		}
		s, rest, ok := readString(b, cborBytes)
		if !ok {
			return nil, false
		}
		*t = append([]byte(nil), s...)
		if *t == nil {
			*t = []byte{} // an empty byte string is not nil, as with the codec
		}
		return rest, true
	case *string:
		s, rest, ok := readString(b, cborText)
		if !ok || !utf8.Valid(s) {
			return nil, false
		}
		*t = string(s)
		return rest, true
	}
	return nil, false
}

// readString reads a definite string of the major type at the front of b.
func readString(b []byte, major byte) (s, rest []byte, ok bool) {
	if b[0]&0xe0 != major {
		return nil, nil, false
	}
	info, b := b[0]&0x1f, b[1:]
	var n uint64
	switch {
	case info < 24:
		n = uint64(info)
	case info == 24 && len(b) >= 1:
		n, b = uint64(b[0]), b[1:]
	case info == 25 && len(b) >= 2:
		n, b = uint64(binary.BigEndian.Uint16(b)), b[2:]
	case info == 26 && len(b) >= 4:
		n, b = uint64(binary.BigEndian.Uint32(b)), b[4:]
	case info == 27 && len(b) >= 8:
		n, b = binary.BigEndian.Uint64(b), b[8:]
	default:
		return nil, nil, false // indefinite, reserved or truncated: the codec says why
	}
	if n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}
