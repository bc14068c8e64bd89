package console

// The scalars of the gateway's JSON-to-CBOR transcoder (jsonargs.go):
// numbers read exactly as registry.ArgsFromJSON reads them, strings with
// their escapes, and the CBOR heads written for them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

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
