package console

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// A gateway call's CBOR result is written as JSON straight from its
// bytes, without decoding it into generic values first (which costs
// many times the result), and exactly as registry.PayloadJSON writes it;
// FuzzGatewayResult holds the two to that.
//
// PayloadJSON decodes with the codec's decoding mode (maps as
// map[string]any) and, when that fails because some map key is not a
// string, decodes again with maps of any keys and spells those keys out
// (fmt.Sprint, or JSON inside tags). That second way changes how every
// key that is not plain text reads, anywhere in the result, so the
// writer first finds which way PayloadJSON goes (anyKeys). It writes
// integers, floats, strings, byte strings, simple values, arrays and
// maps with text keys itself, and hands the rare rest (tags other than
// 55799, maps with other keys) to PayloadJSON, one item at a time.

// resultDecMode is the codec's decoding mode (service's decMode): the
// same limits (32 levels, 131072 elements or pairs), so a result
// PayloadJSON refuses is refused here too.
var resultDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil))}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// tagSelfDescribed is CBOR's "this is CBOR" tag, which decoding drops.
const tagSelfDescribed = 55799

// smallResult is the size under which a result is turned into JSON in
// one pass, in memory; larger ones are checked first, then streamed.
const smallResult = 64 << 10

// writeResultJSON writes the JSON text of a CBOR payload to w, as
// registry.PayloadJSON makes it, and returns how many bytes it wrote.
// It may find the payload bad after writing some: callers that must not
// send half an answer check a payload first by writing it to io.Discard.
func writeResultJSON(w io.Writer, data []byte) (int64, error) {
	if err := resultDecMode.Wellformed(data); err != nil {
		return 0, err
	}
	rw := &resultWriter{data: data, w: w, buf: make([]byte, 0, 4<<10)}
	anyKeys, err := rw.keysNotStrings(0)
	if err != nil {
		return 0, err
	}
	rw.anyKeys = anyKeys
	if _, err := rw.render(0, true); err != nil {
		return 0, err
	}
	rw.flush()
	return rw.n, rw.err
}

type resultWriter struct {
	data    []byte
	anyKeys bool // PayloadJSON decodes maps with keys of any type
	w       io.Writer
	buf     []byte
	n       int64 // bytes written
	err     error // of w
	entries []mapEntry
}

// Write lets a base64 encoder write into the output.
func (r *resultWriter) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	r.maybeFlush()
	return len(p), nil
}

func (r *resultWriter) maybeFlush() {
	if len(r.buf) >= 32<<10 {
		r.flush()
	}
}

func (r *resultWriter) flush() {
	if len(r.buf) == 0 {
		return
	}
	if r.err == nil {
		n, err := r.w.Write(r.buf)
		r.n += int64(n)
		r.err = err
	}
	r.buf = r.buf[:0]
}

// head reads the CBOR head at off of well-formed data: the major type,
// the additional information, its argument and where the content starts.
func (r *resultWriter) head(off int) (major, ai byte, arg uint64, next int) {
	b := r.data[off:]
	major, ai = b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, ai, uint64(ai), off + 1
	case ai == 24:
		return major, ai, uint64(b[1]), off + 2
	case ai == 25:
		return major, ai, uint64(binary.BigEndian.Uint16(b[1:])), off + 3
	case ai == 26:
		return major, ai, uint64(binary.BigEndian.Uint32(b[1:])), off + 5
	case ai == 27:
		return major, ai, binary.BigEndian.Uint64(b[1:]), off + 9
	}
	return major, ai, 0, off + 1 // 31: indefinite length
}

// skip returns the end of the item at off.
func (r *resultWriter) skip(off int) int {
	major, ai, arg, next := r.head(off)
	switch major {
	case 2, 3:
		if ai != 31 {
			return next + int(arg)
		}
		for r.data[next] != 0xff {
			next = r.skip(next)
		}
		return next + 1
	case 4, 5:
		if ai == 31 {
			for r.data[next] != 0xff {
				next = r.skip(next)
			}
			return next + 1
		}
		n := arg
		if major == 5 {
			n *= 2
		}
		for ; n > 0; n-- {
			next = r.skip(next)
		}
		return next
	case 6:
		return r.skip(next)
	}
	return next
}

// plain skips the self-described tags at off, as decoding does.
func (r *resultWriter) plain(off int) int {
	for {
		major, _, arg, next := r.head(off)
		if major != 6 || arg != tagSelfDescribed {
			return off
		}
		off = next
	}
}

// items calls fn with the offset of each element of the array or map
// whose content starts at next (keys and values count apart) and
// returns the end of the container.
func (r *resultWriter) items(ai byte, arg uint64, pairs bool, next int, fn func(i, off int) (int, error)) (int, error) {
	var err error
	if ai == 31 {
		for i := 0; r.data[next] != 0xff; i++ {
			if next, err = fn(i, next); err != nil {
				return 0, err
			}
		}
		return next + 1, nil
	}
	n := int(arg)
	if pairs {
		n *= 2
	}
	for i := range n {
		if next, err = fn(i, next); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// keysNotStrings reports whether some map key in the item at off does
// not decode into a Go string with the codec's mode, which makes
// PayloadJSON decode the whole payload with maps of any keys.
func (r *resultWriter) keysNotStrings(off int) (bool, error) {
	found := false
	var walk func(i, off int) (int, error)
	walk = func(_, off int) (int, error) {
		major, ai, arg, next := r.head(off)
		switch major {
		case 4:
			return r.items(ai, arg, false, next, walk)
		case 5:
			return r.items(ai, arg, true, next, func(i, off int) (int, error) {
				if i%2 == 1 || found {
					return walk(i, off)
				}
				end := r.skip(off)
				if m, _, _, _ := r.head(r.plain(off)); m != 3 {
					var s string
					if resultDecMode.Unmarshal(r.data[off:end], &s) != nil {
						found = true
					}
				}
				return walk(i, off)
			})
		case 6:
			return walk(0, next)
		}
		return r.skip(off), nil
	}
	_, err := walk(0, off)
	return found, err
}

var errUTF8 = errors.New("cbor: invalid UTF-8 string")

// render writes the item at off and returns its end. top is the whole
// payload.
func (r *resultWriter) render(off int, top bool) (int, error) {
	off = r.plain(off)
	major, ai, arg, next := r.head(off)
	switch major {
	case 0:
		r.buf = strconv.AppendUint(r.buf, arg, 10)
	case 1:
		if arg <= math.MaxInt64 {
			r.buf = strconv.AppendInt(r.buf, -1-int64(arg), 10)
		} else {
			v := new(big.Int).SetUint64(arg)
			r.buf = v.Neg(v.Add(v, big.NewInt(1))).Append(r.buf, 10)
		}
	case 2:
		r.buf = append(r.buf, '"')
		if ai != 31 {
			next = r.base64(next, int(arg))
		} else {
			enc := base64.NewEncoder(base64.StdEncoding, r)
			for r.data[next] != 0xff {
				_, _, n, c := r.head(next)
				enc.Write(r.data[c : c+int(n)])
				next = c + int(n)
			}
			enc.Close()
			next++
		}
		r.buf = append(r.buf, '"')
	case 3:
		r.buf = append(r.buf, '"')
		var err error
		if next, err = r.text(ai, arg, next, func(s []byte) { r.buf = appendEscaped(r.buf, s); r.maybeFlush() }); err != nil {
			return 0, err
		}
		r.buf = append(r.buf, '"')
	case 4:
		r.buf = append(r.buf, '[')
		end, err := r.items(ai, arg, false, next, func(i, off int) (int, error) {
			if i > 0 {
				r.buf = append(r.buf, ',')
			}
			return r.render(off, false)
		})
		if err != nil {
			return 0, err
		}
		r.buf = append(r.buf, ']')
		next = end
	case 5:
		return r.renderMap(off, top)
	case 6:
		return r.fallback(off, top)
	case 7:
		switch {
		case ai < 20:
			r.buf = strconv.AppendUint(append(r.buf, `{"simple":`...), uint64(ai), 10)
			r.buf = append(r.buf, '}')
		case ai == 20:
			r.buf = append(r.buf, "false"...)
		case ai == 21:
			r.buf = append(r.buf, "true"...)
		case ai == 22, ai == 23: // null, undefined
			r.buf = append(r.buf, "null"...)
		case ai == 24:
			r.buf = strconv.AppendUint(append(r.buf, `{"simple":`...), arg, 10)
			r.buf = append(r.buf, '}')
		case ai == 25:
			r.buf = appendJSONFloat(r.buf, float16to64(uint16(arg)))
		case ai == 26:
			r.buf = appendJSONFloat(r.buf, float64(math.Float32frombits(uint32(arg))))
		case ai == 27:
			r.buf = appendJSONFloat(r.buf, math.Float64frombits(arg))
		}
	}
	r.maybeFlush()
	return next, nil
}

// base64 writes n bytes at off in base64, in pieces, and returns the end.
func (r *resultWriter) base64(off, n int) int {
	const piece = 3 * 4 << 10 // whole groups of 3 bytes: no padding between pieces
	end := off + n
	for off < end {
		m := min(piece, end-off)
		r.buf = base64.StdEncoding.AppendEncode(r.buf, r.data[off:off+m])
		r.maybeFlush()
		off += m
	}
	return end
}

// text passes the UTF-8 chunks of a text string to fn and returns its
// end; invalid UTF-8 is an error, as in decoding.
func (r *resultWriter) text(ai byte, arg uint64, next int, fn func([]byte)) (int, error) {
	if ai != 31 {
		s := r.data[next : next+int(arg)]
		if !utf8.Valid(s) {
			return 0, errUTF8
		}
		fn(s)
		return next + int(arg), nil
	}
	for r.data[next] != 0xff {
		_, _, n, c := r.head(next)
		s := r.data[c : c+int(n)]
		if !utf8.Valid(s) {
			return 0, errUTF8
		}
		fn(s)
		next = c + int(n)
	}
	return next + 1, nil
}

// renderMap writes a map whose keys are all text as a JSON object, its
// keys sorted as encoding/json sorts them and the last of equal keys
// winning, as decoding into a Go map does. Other maps go to fallback.
func (r *resultWriter) renderMap(off int, top bool) (int, error) {
	_, ai, arg, next := r.head(off)
	// The entries of the maps being written, on one stack: no garbage
	// per map.
	base := len(r.entries)
	defer func() { r.entries = r.entries[:base] }()
	end, err := r.items(ai, arg, true, next, func(i, k int) (int, error) {
		if i%2 == 1 {
			r.entries[len(r.entries)-1].val = k
			return r.skip(k), nil
		}
		kk := r.plain(k)
		major, kai, karg, knext := r.head(kk)
		if major != 3 {
			return 0, errFallback
		}
		key := r.data[knext:knext] // a definite key is a slice of the data
		end, err := r.text(kai, karg, knext, func(s []byte) {
			if kai != 31 {
				key = s
			} else {
				key = append(key[:len(key):len(key)], s...) // chunks: a copy
			}
		})
		r.entries = append(r.entries, mapEntry{key: key})
		return end, err
	})
	if err == errFallback {
		return r.fallback(off, top)
	}
	if err != nil {
		return 0, err
	}
	// By key; stable, so the last of equal keys is the last one read.
	slices.SortStableFunc(r.entries[base:], func(a, b mapEntry) int { return bytes.Compare(a.key, b.key) })
	r.buf = append(r.buf, '{')
	n, first := len(r.entries)-base, true
	for i := range n {
		e := r.entries[base+i] // r.entries may move as values are written
		if i+1 < n && bytes.Equal(e.key, r.entries[base+i+1].key) {
			continue
		}
		if !first {
			r.buf = append(r.buf, ',')
		}
		first = false
		r.buf = append(appendEscaped(append(r.buf, '"'), e.key), '"', ':')
		if _, err := r.render(e.val, false); err != nil {
			return 0, err
		}
	}
	r.buf = append(r.buf, '}')
	r.maybeFlush()
	return end, nil
}

// mapEntry is a map entry being written: its key and its value's offset.
type mapEntry struct {
	key []byte
	val int
}

var errFallback = errors.New("not a map of text keys")

// anyKeysProbe is a map with a key that is not a string: put beside an
// item, it makes PayloadJSON decode that item as it decodes the whole
// result when anyKeys is set.
var anyKeysProbe = []byte{0xa1, 0x01, 0x00} // {1: 0}

const anyKeysProbeJSON = `,{"1":0}]`

// fallback writes the item at off with registry.PayloadJSON.
func (r *resultWriter) fallback(off int, top bool) (int, error) {
	end := r.skip(off)
	var out []byte
	var err error
	switch {
	case top:
		out, err = registry.PayloadJSON(service.Payload{ContentType: service.ContentCBOR, Data: r.data})
	case !r.anyKeys:
		out, err = registry.PayloadJSON(service.Payload{ContentType: service.ContentCBOR, Data: r.data[off:end]})
	default:
		// [item, {1: 0}]: one level deeper than the item, which is not
		// at the top, so within the limits the whole result passed.
		w := make([]byte, 0, 1+end-off+len(anyKeysProbe))
		w = append(append(append(w, 0x82), r.data[off:end]...), anyKeysProbe...)
		out, err = registry.PayloadJSON(service.Payload{ContentType: service.ContentCBOR, Data: w})
		if err == nil {
			if len(out) < 1+len(anyKeysProbeJSON) || out[0] != '[' || !bytes.HasSuffix(out, []byte(anyKeysProbeJSON)) {
				return 0, errors.New("console: unexpected JSON of a result's item")
			}
			out = out[1 : len(out)-len(anyKeysProbeJSON)]
		}
	}
	if err != nil {
		return 0, err
	}
	r.Write(out)
	return end, nil
}

// appendEscaped appends s, valid UTF-8, escaped as encoding/json does
// without HTML escaping (quotes not included).
func appendEscaped(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendJSONFloat appends f as registry.PayloadJSON writes a float64:
// NaN and the infinities as strings, the rest as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// float16to64 widens an IEEE 754 half-precision float.
func float16to64(h uint16) float64 {
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	var f float64
	switch exp {
	case 0:
		f = math.Ldexp(frac, -24)
	case 0x1f:
		f = math.Inf(1)
		if frac != 0 {
			f = math.NaN()
		}
	default:
		f = math.Ldexp(frac+1024, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}
