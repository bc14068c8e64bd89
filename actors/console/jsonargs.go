package console

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf16"
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

// number reads a number that starts with c, by JSON's grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and writes it as
// registry.ArgsFromJSON converts it.
func (t *argsTranscoder) number(c byte) error {
	s := append(t.text[:0], c)
	defer func() { t.text = s[:0] }()
	digits := func(atLeastOne bool) error {
		n := 0
		for {
			c, err := t.r.ReadByte()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if c < '0' || c > '9' {
				t.r.UnreadByte()
				break
			}
			t.off++
			s = append(s, c)
			n++
		}
		if atLeastOne && n == 0 {
			c, err := t.readByte()
			if err != nil {
				return eof(err)
			}
			return t.badChar(c, "in numeric literal")
		}
		return nil
	}
	peek := func() byte {
		b, err := t.r.Peek(1)
		if err != nil {
			return 0
		}
		return b[0]
	}
	if c == '-' {
		c, err := t.readByte()
		if err != nil {
			return eof(err)
		}
		if c < '0' || c > '9' {
			return t.badChar(c, "in numeric literal")
		}
		s = append(s, c)
	}
	if s[len(s)-1] != '0' {
		if err := digits(false); err != nil {
			return err
		}
	}
	integer := true
	if peek() == '.' {
		integer = false
		t.readByte()
		s = append(s, '.')
		if err := digits(true); err != nil {
			return err
		}
	}
	if p := peek(); p == 'e' || p == 'E' {
		integer = false
		t.readByte()
		s = append(s, p)
		if p := peek(); p == '+' || p == '-' {
			t.readByte()
			s = append(s, p)
		}
		if err := digits(true); err != nil {
			return err
		}
	}
	if integer && len(s) <= 18 {
		// Fits an int64 for sure: no strconv, no garbage.
		neg := s[0] == '-'
		var v int64
		for _, d := range s[btoi(neg):] {
			v = v*10 + int64(d-'0')
		}
		if neg {
			v = -v
		}
		t.out = appendInt(t.out, v)
		return t.check()
	}
	// As service's jsonNumber does.
	str := string(s)
	if i, err := strconv.ParseInt(str, 10, 64); err == nil {
		t.out = appendInt(t.out, i)
	} else if u, err := strconv.ParseUint(str, 10, 64); err == nil {
		t.out = head(t.out, 0x00, u)
	} else if f, err := strconv.ParseFloat(str, 64); err != nil {
		return &argsError{msg: fmt.Sprintf("number %s is out of range", str)}
	} else if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		t.out = appendInt(t.out, int64(f)) // 6.0 or 1e3
	} else {
		t.out = binary.BigEndian.AppendUint64(append(t.out, 0xfb), math.Float64bits(f))
	}
	return t.check()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return head(b, 0x00, uint64(v))
	}
	return head(b, 0x20, uint64(-1-v))
}

// str reads a string whose '"' was read, decoding it as encoding/json
// does (invalid UTF-8 and lone surrogates become U+FFFD), and writes it
// as CBOR text.
func (t *argsTranscoder) str() error {
	s := t.text[:0]
	defer func() {
		if cap(s) <= 64<<10 {
			t.text = s[:0] // keep a small scratch, not a big string's
		}
	}()
	for {
		c, err := t.readByte()
		if err != nil {
			return eof(err)
		}
		switch {
		case c == '"':
			t.out = head(t.out, 0x60, uint64(len(s)))
			t.out = append(t.out, s...)
			return t.check()
		case c < 0x20:
			return t.badChar(c, "in string literal")
		case c == '\\':
			c, err := t.readByte()
			if err != nil {
				return eof(err)
			}
			switch c {
			case '"', '\\', '/':
				s = append(s, c)
			case 'b':
				s = append(s, '\b')
			case 'f':
				s = append(s, '\f')
			case 'n':
				s = append(s, '\n')
			case 'r':
				s = append(s, '\r')
			case 't':
				s = append(s, '\t')
			case 'u':
				r, err := t.hex4()
				if err != nil {
					return err
				}
				if utf16.IsSurrogate(r) {
					// A pair only if a low surrogate follows at once.
					if b, _ := t.r.Peek(6); len(b) == 6 && b[0] == '\\' && b[1] == 'u' {
						if r2, ok := parseHex4(b[2:]); ok {
							if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
								t.r.Discard(6)
								t.off += 6
								s = utf8.AppendRune(s, d)
								continue
							}
						}
					}
					r = unicode.ReplacementChar
				}
				s = utf8.AppendRune(s, r)
			default:
				return t.badChar(c, "in string escape code")
			}
		case c < utf8.RuneSelf:
			s = append(s, c)
		default:
			t.r.UnreadByte()
			r, size, _ := t.r.ReadRune()
			t.off += int64(size) - 1
			s = utf8.AppendRune(s, r) // U+FFFD for a byte that is not UTF-8
		}
		if t.limit > 0 && len(t.out)+len(s)-4*t.conts > t.limit {
			return t.tooLarge()
		}
	}
}

func (t *argsTranscoder) hex4() (rune, error) {
	var b [4]byte
	for i := range b {
		c, err := t.readByte()
		if err != nil {
			return 0, eof(err)
		}
		b[i] = c
		if hexVal(c) < 0 {
			return 0, t.badChar(c, "in \\u hexadecimal character escape")
		}
	}
	r, _ := parseHex4(b[:])
	return r, nil
}

func parseHex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		v := hexVal(c)
		if v < 0 {
			return -1, false
		}
		r = r*16 + v
	}
	return r, true
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// readHead splits a CBOR head (major type and argument) off b.
func readHead(b []byte) (major byte, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	n := 0
	switch ai := b[0] & 0x1f; {
	case ai < 24 || ai == 31:
	case ai <= 27:
		n = 1 << (ai - 24)
	default:
		return 0, nil, errors.New("cbor: reserved additional information")
	}
	if len(b) < 1+n {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return b[0] >> 5, b[1+n:], nil
}

// headArg returns the argument of the head at the start of b, which
// readHead accepted.
func headArg(b []byte) (uint64, bool) {
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		return uint64(ai), false
	case ai == 24:
		return uint64(b[1]), false
	case ai == 25:
		return uint64(binary.BigEndian.Uint16(b[1:])), false
	case ai == 26:
		return uint64(binary.BigEndian.Uint32(b[1:])), false
	case ai == 27:
		return binary.BigEndian.Uint64(b[1:]), false
	}
	return 0, true // indefinite length
}

// compact rewrites the transcoder's output in place with the shortest
// heads, as the codec writes them. The output holds integers, floats,
// simple values, text and containers, all of definite length.
func compact(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); {
		major := b[r] >> 5
		_, rest, _ := readHead(b[r:])
		hl := len(b) - r - len(rest)
		n, _ := headArg(b[r:])
		switch major {
		case 3: // text: its bytes follow
			h := head(b[w:w], major<<5, n)
			w += len(h)
			w += copy(b[w:], b[r+hl:r+hl+int(n)])
			r += hl + int(n)
		case 4, 5:
			w += len(head(b[w:w], major<<5, n))
			r += hl
		default:
			w += copy(b[w:], b[r:r+hl])
			r += hl
		}
	}
	return b[:w]
}
