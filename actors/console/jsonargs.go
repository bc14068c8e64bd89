package console

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// The gateway's request body is transcoded from JSON to the CBOR
// argument array as it is read: decoding it into generic values first
// costs some 20 times the body (an interface, a json.Number and a
// string per number), which let one request take hundreds of MiB.
//
// The result is what registry.ArgsFromJSON followed by the codec's
// encoding gives, byte for byte but for the order of map entries (the
// codec writes maps in Go's random map order): integral numbers become
// CBOR integers (int64, uint64 past int64), other numbers float64,
// objects maps with text keys (the last of duplicate keys wins), and
// whitespace-only text no arguments. FuzzGatewayArgs holds the two to
// that.

// maxArgsDepth is how deeply arrays and objects may nest in a gateway
// body, the argument array included: deeper is refused, which bounds
// the transcoder's stack.
const maxArgsDepth = 64

// argsError is a body the transcoder refuses.
type argsError struct {
	msg      string
	tooLarge bool // the arguments grew past the limit
}

func (e *argsError) Error() string { return e.msg }

// errArgsDepth is the error of a body nested too deeply.
var errArgsDepth = &argsError{msg: fmt.Sprintf("nested more than %d levels deep", maxArgsDepth)}

// Container heads are written before their element count is known: as
// a 5-byte head (major type | 26, a 4-byte count) patched when the
// container ends, and shortened by compact at the end.
const longHead = 5

// argsTranscoder reads one JSON text and writes the CBOR argument array.
type argsTranscoder struct {
	r     *bufio.Reader
	off   int64  // bytes read, for error messages
	out   []byte // CBOR with long container heads
	limit int    // most bytes of CBOR arguments; 0: no limit
	conts int    // containers written so far (each head may shrink by 4)
	keys  []int  // offsets in out of the open objects' entries
	text  []byte // scratch for strings and numbers
}

// transcodeArgs reads a JSON array of arguments from r and returns it
// as one CBOR array. limit bounds the CBOR (0: no bound); past it the
// error is an *argsError with tooLarge set. Errors of r are returned
// as they are.
func transcodeArgs(r io.Reader, limit int) ([]byte, error) {
	t := &argsTranscoder{r: bufio.NewReaderSize(r, 32<<10), limit: limit}
	return t.run()
}

func (t *argsTranscoder) run() ([]byte, error) {
	c, err := t.skipSpace()
	if err == io.EOF {
		return []byte{0x80}, nil // no text: no arguments
	}
	if err != nil {
		return nil, err
	}
	if c != '[' {
		if isUnicodeSpace(t.r, c) {
			// registry.ArgsFromJSON trims Unicode white space before
			// looking for JSON: text of only that is no arguments,
			// anything after it invalid JSON.
			if err := t.restIsSpace(); err != nil {
				return nil, err
			}
			return []byte{0x80}, nil
		}
		return nil, t.notArray(c)
	}
	t.out = make([]byte, 0, 4<<10)
	if err := t.array(1); err != nil {
		return nil, err
	}
	if c, err := t.skipSpace(); err == nil {
		return nil, &argsError{msg: fmt.Sprintf("invalid JSON: more text after the value (%s at byte %d)", quoteChar(c), t.off)}
	} else if err != io.EOF {
		return nil, err
	}
	out := compact(t.out)
	if t.limit > 0 && len(out) > t.limit {
		return nil, t.tooLarge()
	}
	return out, nil
}

func (t *argsTranscoder) tooLarge() error {
	return &argsError{msg: fmt.Sprintf("the arguments are over the limit of %d bytes", t.limit), tooLarge: true}
}

// notArray explains a body that starts with something else than '['.
func (t *argsTranscoder) notArray(c byte) error {
	kind := ""
	switch {
	case c == '{':
		kind = "an object"
	case c == '"':
		kind = "a string"
	case c == 't' || c == 'f':
		kind = "a boolean"
	case c == 'n':
		kind = "null"
	case c == '-' || c >= '0' && c <= '9':
		kind = "a number"
	default:
		return t.badChar(c, "looking for beginning of value")
	}
	return &argsError{msg: "want a JSON array of arguments, like [6, 7]; got " + kind}
}

func (t *argsTranscoder) badChar(c byte, where string) error {
	return &argsError{msg: fmt.Sprintf("invalid JSON: invalid character %s %s (at byte %d)", quoteChar(c), where, t.off)}
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// eof turns the end of the body inside a value into a syntax error.
func eof(err error) error {
	if err == io.EOF {
		return &argsError{msg: "invalid JSON: unexpected end of JSON input"}
	}
	return err
}

func (t *argsTranscoder) readByte() (byte, error) {
	c, err := t.r.ReadByte()
	if err == nil {
		t.off++
	}
	return c, err
}

// skipSpace reads past JSON white space and returns the next byte.
func (t *argsTranscoder) skipSpace() (byte, error) {
	for {
		c, err := t.readByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, nil
	}
}

// isUnicodeSpace reports whether c, just read, starts a Unicode space
// that JSON does not count as white space.
func isUnicodeSpace(r *bufio.Reader, c byte) bool {
	if c < utf8.RuneSelf {
		return c == '\v' || c == '\f'
	}
	r.UnreadByte()
	rn, _, _ := r.ReadRune()
	r.UnreadRune()
	r.ReadByte()
	return unicode.IsSpace(rn)
}

// restIsSpace reads the rest of the body, after a Unicode space that is
// not JSON's: only spaces is fine, anything else invalid JSON.
func (t *argsTranscoder) restIsSpace() error {
	t.r.UnreadByte()
	for {
		rn, size, err := t.r.ReadRune()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !unicode.IsSpace(rn) || rn == utf8.RuneError && size == 1 {
			return &argsError{msg: "invalid JSON: white space that JSON does not allow before the value"}
		}
	}
}

// head appends a CBOR head in its shortest form.
func head(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= math.MaxUint8:
		return append(b, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, major|27), n)
}

// open starts a container with a long head and returns its offset.
func (t *argsTranscoder) open(major byte, depth int) (int, error) {
	if depth > maxArgsDepth {
		return 0, errArgsDepth
	}
	t.conts++
	at := len(t.out)
	t.out = append(t.out, major|26, 0, 0, 0, 0)
	return at, t.check()
}

// check stops a body whose CBOR surely grew past the limit: compact
// takes at most 4 bytes off each container head.
func (t *argsTranscoder) check() error {
	if t.limit > 0 && len(t.out)-4*t.conts > t.limit {
		return t.tooLarge()
	}
	return nil
}

// array reads an array whose '[' was read; depth counts it.
func (t *argsTranscoder) array(depth int) error {
	at, err := t.open(0x80, depth)
	if err != nil {
		return err
	}
	n := 0
	c, err := t.skipSpace()
	if err != nil {
		return eof(err)
	}
	if c != ']' {
		for {
			if err := t.value(c, depth); err != nil {
				return err
			}
			n++
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
			if c == ']' {
				break
			}
			if c != ',' {
				return t.badChar(c, "after array element")
			}
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
		}
	}
	binary.BigEndian.PutUint32(t.out[at+1:], uint32(n))
	return nil
}

// object reads an object whose '{' was read.
func (t *argsTranscoder) object(depth int) error {
	at, err := t.open(0xa0, depth)
	if err != nil {
		return err
	}
	base := len(t.keys)
	c, err := t.skipSpace()
	if err != nil {
		return eof(err)
	}
	if c != '}' {
		for {
			if c != '"' {
				return t.badChar(c, "looking for beginning of object key string")
			}
			t.keys = append(t.keys, len(t.out))
			if err := t.str(); err != nil {
				return err
			}
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
			if c != ':' {
				return t.badChar(c, "after object key")
			}
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
			if err := t.value(c, depth); err != nil {
				return err
			}
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
			if c == '}' {
				break
			}
			if c != ',' {
				return t.badChar(c, "after object key:value pair")
			}
			if c, err = t.skipSpace(); err != nil {
				return eof(err)
			}
		}
	}
	n := t.dedup(at+longHead, t.keys[base:])
	t.keys = t.keys[:base]
	binary.BigEndian.PutUint32(t.out[at+1:], uint32(n))
	return nil
}

// dedup keeps the last of the entries with the same key, as decoding
// into a Go map does, and returns how many entries remain. entries are
// the offsets of the object's keys in t.out; the object's entries run
// from start to the end of t.out.
func (t *argsTranscoder) dedup(start int, entries []int) int {
	if len(entries) < 2 {
		return len(entries)
	}
	key := func(i int) []byte {
		b := t.out[entries[i]:]
		_, rest, _ := readHead(b)
		l, _ := headArg(b)
		return rest[:l]
	}
	order := make([]int32, len(entries))
	for i := range order {
		order[i] = int32(i)
	}
	// By key, then by position: the last of a run of equal keys wins.
	slices.SortFunc(order, func(a, b int32) int {
		if c := bytes.Compare(key(int(a)), key(int(b))); c != 0 {
			return c
		}
		return int(a - b)
	})
	drop := make([]bool, len(entries))
	dups := 0
	for i := 0; i+1 < len(order); i++ {
		if bytes.Equal(key(int(order[i])), key(int(order[i+1]))) {
			drop[order[i]] = true
			dups++
		}
	}
	if dups == 0 {
		return len(entries)
	}
	kept := make([]byte, 0, len(t.out)-start)
	for i, off := range entries {
		end := len(t.out)
		if i+1 < len(entries) {
			end = entries[i+1]
		}
		if !drop[i] {
			kept = append(kept, t.out[off:end]...)
		}
	}
	t.out = append(t.out[:start], kept...)
	return len(entries) - dups
}

// value reads the value that starts with c.
func (t *argsTranscoder) value(c byte, depth int) error {
	switch c {
	case '[':
		return t.array(depth + 1)
	case '{':
		return t.object(depth + 1)
	case '"':
		return t.str()
	case 't':
		return t.literal("rue", 0xf5)
	case 'f':
		return t.literal("alse", 0xf4)
	case 'n':
		return t.literal("ull", 0xf6)
	}
	if c == '-' || c >= '0' && c <= '9' {
		return t.number(c)
	}
	return t.badChar(c, "looking for beginning of value")
}

func (t *argsTranscoder) literal(rest string, b byte) error {
	for i := 0; i < len(rest); i++ {
		c, err := t.readByte()
		if err != nil {
			return eof(err)
		}
		if c != rest[i] {
			return t.badChar(c, "in literal")
		}
	}
	t.out = append(t.out, b)
	return t.check()
}
