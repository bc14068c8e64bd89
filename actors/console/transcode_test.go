package console

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// argsSeeds are JSON bodies for FuzzGatewayArgs and TestTranscodeArgs.
var argsSeeds = []string{
	``, ` `, "\t\n\r ", "\f", " \v\u00a0\u2003 ", "\f[1]", "[1]\f", "\u00a0x",
	`[]`, `[6, 7]`, `[6.0, 1e1, -0, -0.0, 0.5, -1.5e-7, 1E+2, 1e21, 1e-400]`,
	`[9223372036854775807, 9223372036854775808, -9223372036854775808, -9223372036854775809]`,
	`[18446744073709551615, 18446744073709551616, 1e19, -1e19, 123456789012345678, 1234567890123456789]`,
	`[1e400]`, `[-1e400]`, `[01]`, `[-]`, `[1.]`, `[.5]`, `[+1]`, `[1e]`, `[1e+]`, `[-01]`, `[0.0e0]`,
	`[true, false, null]`, `[tru]`, `[nul]`, `[truex]`, `[null,]`, `[,]`, `[1 2]`,
	`["", "a", "<b>&", "\u00e9\u2028\"\\\/\b\f\n\r\t", "\ud83d\ude00", "\ud83d", "\ude00", "\ud83dx", "\ud83d\u0041", "\ud83d\ud83d\ude00"]`,
	"[\"\xff\xfe\", \"a\xc3\", \"\xe2\x82\"]", "[\"\x01\"]", `["\x"]`, `["\u12"]`, `["\u12G4"]`, `["abc`,
	`[{}]`, `[{"a": 1, "b": [2, {"c": null}]}]`, `[{"a": 1, "a": 2}]`, `[{"b": 1, "a": 2, "b": 3, "a": 4, "c": 5}]`,
	`[{"a": {"x": 1, "x": 2}, "a": {"y": 3}}]`, `[{"": 0, "": 1}]`, `[{1: 2}]`, `[{"a" 1}]`, `[{"a": 1,}]`, `[{"a": 1`,
	`{"x": 1}`, `6`, `"s"`, `true`, `null`, `[6, 7`, `[6, 7] [8]`, `[6] x`, `[6]]`, `x`, `]`,
	strings.Repeat("[", 64) + strings.Repeat("]", 64),
	strings.Repeat("[", 65) + strings.Repeat("]", 65),
	`[` + strings.Repeat(`{"k":`, 63) + `1` + strings.Repeat(`}`, 63) + `]`,
	`[` + strings.Repeat(`{"k":`, 64) + `1` + strings.Repeat(`}`, 64) + `]`,
	`[` + strings.Repeat(`[],`, 30) + `[]]`,
	`[{` + strings.Repeat(`"k":[1,2],`, 30) + `"k":{}}]`,
}

// bigArgs are bodies too big to be good fuzz seeds: heads of 2 and 4
// bytes.
var bigArgs = []string{
	`["` + strings.Repeat("x", 70000) + `"]`,
	`[` + strings.Repeat(`[],`, 300) + `[]]`,
	`[{` + strings.Repeat(`"k":[1,2],"k`, 3000) + `":{}}]`,
	`[` + strings.Repeat(`1,`, 70000) + `{}]`,
}

// canonCBOR rewrites well-formed, definite-length CBOR with the entries
// of each map sorted by their encoded keys: the codec writes maps in
// Go's random map order.
func canonCBOR(t testing.TB, b []byte) []byte {
	t.Helper()
	out, rest := canonItem(t, b)
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the CBOR item", len(rest))
	}
	return out
}

func canonItem(t testing.TB, b []byte) (item, rest []byte) {
	major, r, err := readHead(b)
	if err != nil {
		t.Fatalf("bad CBOR % x: %v", b, err)
	}
	n, indef := headArg(b)
	if indef {
		t.Fatalf("indefinite length in % x", b)
	}
	h := b[:len(b)-len(r)]
	switch major {
	case 2, 3:
		return b[:len(h)+int(n)], b[len(h)+int(n):]
	case 4:
		out := slices.Clone(h)
		for range n {
			var e []byte
			e, r = canonItem(t, r)
			out = append(out, e...)
		}
		return out, r
	case 5:
		type kv struct{ k, v []byte }
		var es []kv
		for range n {
			var k, v []byte
			k, r = canonItem(t, r)
			v, r = canonItem(t, r)
			es = append(es, kv{k, v})
		}
		slices.SortFunc(es, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		out := slices.Clone(h)
		for _, e := range es {
			out = append(append(out, e.k...), e.v...)
		}
		return out, r
	case 6:
		e, r := canonItem(t, r)
		return append(slices.Clone(h), e...), r
	}
	return h, r
}

// jsonDepth is how deeply valid JSON text nests.
func jsonDepth(s []byte) int {
	depth, most, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			most = max(most, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return most
}

// checkArgs holds the transcoder to registry.ArgsFromJSON and the codec.
func checkArgs(t *testing.T, body []byte) {
	t.Helper()
	var want []byte
	args, wantErr := registry.ArgsFromJSON(body)
	if wantErr == nil {
		var p service.Payload
		p, wantErr = registry.EncodeArgs(args...)
		want = p.Data
	}
	got, err := transcodeArgs(bytes.NewReader(body), 0)
	switch {
	case wantErr != nil && err != nil:
	case wantErr != nil:
		t.Fatalf("%q: transcoded to % x, but ArgsFromJSON says %v", body, got, wantErr)
	case errors.Is(err, errArgsDepth) && jsonDepth(body) > maxArgsDepth:
	case err != nil:
		t.Fatalf("%q: %v, but ArgsFromJSON takes it", body, err)
	case !bytes.Equal(canonCBOR(t, got), canonCBOR(t, want)):
		t.Fatalf("%q:\n got % x\nwant % x", body, got, want)
	}
}

func TestTranscodeArgs(t *testing.T) {
	for _, s := range append(argsSeeds, bigArgs...) {
		checkArgs(t, []byte(s))
	}
	// The words the gateway's callers see.
	for body, want := range map[string]string{
		`[6, 7`:      "invalid JSON",
		`[6, 7] [8]`: "more text",
		`[1e400]`:    "out of range",
		`{"x": 1}`:   "want a JSON array of arguments, like [6, 7]; got an object",
		`6`:          "got a number",
		`"x"`:        "got a string",
		`[1, x]`:     "invalid character 'x'",
		strings.Repeat("[", 65) + strings.Repeat("]", 65): "nested more than 64 levels deep",
	} {
		_, err := transcodeArgs(strings.NewReader(body), 0)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: %v, want %q", body, err, want)
		}
	}
	// The limit: the CBOR, not the JSON, is what it bounds.
	var ae *argsError
	if _, err := transcodeArgs(strings.NewReader(`[`+strings.Repeat(`1.5,`, 100)+`1.5]`), 500); !errors.As(err, &ae) || !ae.tooLarge {
		t.Errorf("over the limit: %v", err)
	}
	many := `[` + strings.Repeat(`[],`, 199) + `[]]` // 202 bytes of CBOR
	if b, err := transcodeArgs(strings.NewReader(many), 202); err != nil || len(b) != 202 {
		t.Errorf("at the limit: %d bytes, %v", len(b), err)
	}
	if _, err := transcodeArgs(strings.NewReader(many), 201); !errors.As(err, &ae) || !ae.tooLarge {
		t.Errorf("a byte over the limit: %v", err)
	}
	if _, err := transcodeArgs(strings.NewReader(`["`+strings.Repeat(`x`, 600)+`"]`), 500); !errors.As(err, &ae) || !ae.tooLarge {
		t.Errorf("a long string over the limit: %v", err)
	}
}

func FuzzGatewayArgs(f *testing.F) {
	for _, s := range argsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkArgs)
}

// resultSeeds are CBOR payloads for FuzzGatewayResult and TestResultJSON.
func resultSeeds(t testing.TB) [][]byte {
	enc := func(v any) []byte {
		p, err := service.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return p.Data
	}
	hx := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nest := func(n int) []byte { return append(bytes.Repeat([]byte{0x81}, n), 0x01) }
	var seeds [][]byte
	for _, v := range []any{
		0, 23, 24, 255, 256, 65535, 65536, uint64(1) << 32, uint64(math.MaxUint64), -1, -24, -25, int64(math.MinInt64),
		0.0, math.Copysign(0, -1), 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1), float32(1.5), float32(3.4e38),
		"", "a", "<b>&\"\\\u2028\u2029\x00\x1f\x7f é 😀", []byte{}, []byte("any bytes \xff"), []byte(strings.Repeat("y", 20000)),
		true, false, nil, []any{}, []any{1, "x", []any{nil}}, map[string]any{}, map[string]any{"b": 1, "a": []any{2.5}, "": "e"},
		map[int]string{1: "a", 2: "b"}, map[bool]int{true: 1}, map[float64]int{1.5: 1},
		map[string]any{"m": map[int]int{3: 4}, "s": map[string]int{"x": 1}},
		[]any{map[int]int{1: 2}, map[string]any{"k": []byte("v")}},
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		big.NewInt(5), new(big.Int).Lsh(big.NewInt(1), 70), new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 70)),
		cbor.Tag{Number: 100, Content: []any{1, "x"}}, cbor.Tag{Number: 100, Content: map[int]int{1: 2}},
		[]any{cbor.Tag{Number: 100, Content: map[int]int{1: 2}}, map[int]int{3: 4}},
		[]any{cbor.Tag{Number: 100, Content: map[string]int{"a": 1}}, map[int]int{3: 4}},
		cbor.SimpleValue(0), cbor.SimpleValue(19), cbor.SimpleValue(32), cbor.SimpleValue(255),
		[]any{strings.Repeat("z", 70000), []byte(strings.Repeat("w", 70000))},
	} {
		seeds = append(seeds, enc(v))
	}
	for _, s := range []string{
		"f9 3c00", "f9 7c00", "f9 fc00", "f9 7e00", "f9 0001", "f9 8000", "f9 03ff", "f9 7bff", // halves
		"fa 7f800000", "fa 00000001", "f7", "f8 20", // single, undefined, simple
		"3b ffffffffffffffff", "3b 8000000000000000", "3b 7fffffffffffffff", // big negatives
		"5f 41 01 42 02 03 ff", "5f ff", "7f 61 61 62 c3 a9 ff", "7f ff", "7f 61 ff ff", // indefinite strings
		"9f 01 9f ff ff", "bf 61 62 01 61 61 02 ff", "bf 01 02 ff", // indefinite containers
		"a2 61 61 01 61 61 02", "a2 61 62 01 61 61 02", "a2 01 02 01 03", "a2 61 31 01 01 02", // duplicate, colliding keys
		"a1 f6 01", "a1 f7 01", "a1 40 01", "a1 41 61 01", "a1 d8 64 61 61 01", "a1 d9 d9f7 61 61 01", "a1 80 01", "a1 a0 01", // odd keys
		"82 a1 01 02 a1 d8 64 61 61 01", "82 a1 61 61 01 a1 d8 64 61 61 01", "82 a1 f6 01 a1 01 02", // keys read another way
		"a1 c2 41 01 01", "a1 5f 41 61 ff 01", "a1 7f 61 61 61 62 ff 01", // bignum key, indefinite keys
		"d9 d9f7 01", "d9 d9f7 d9 d9f7 82 01 02", "82 d9 d9f7 01 d8 64 d9 d9f7 02", // self-described
		"c0 74 32303236 2d30312d30325430333a30343a30355a", "c1 1a 5f5e1000", "c1 1b 0000003afff44180", "c1 3b 0000003afff44180", "c1 fb 41d7d78400000000", "c0 61 78", "c1 61 78", // times
		"c2 41 01", "c3 41 01", "c2 01", "d8 64 d8 65 01", "d8 18 41 01", "d5 41 01", // bignums, tags
		"61 ff", "62 c3 28", "7f 61 c3 61 a9 ff", "a1 61 ff 01", // invalid UTF-8
		"", "ff", "1c", "01 02", "81", "a1 01", "5f 01 ff", "9f", "f8 01", // malformed
	} {
		seeds = append(seeds, hx(s))
	}
	seeds = append(seeds, nest(31), nest(32), nest(33), append([]byte{0x81, 0xd8, 0x64}, nest(30)...))
	long := append([]byte{0x99, 0xff, 0xff}, bytes.Repeat([]byte{0x01}, 0xffff)...) // 65535 elements
	seeds = append(seeds, long, append([]byte{0x9a, 0x00, 0x02, 0x00, 0x01}, bytes.Repeat([]byte{0x01}, 0x20001)...))
	return seeds
}

// checkResult holds the streaming writer to registry.PayloadJSON.
func checkResult(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := registry.PayloadJSON(service.Payload{ContentType: service.ContentCBOR, Data: data})
	var buf bytes.Buffer
	n, err := writeResultJSON(&buf, data)
	switch {
	case wantErr != nil && err != nil:
	case wantErr != nil:
		t.Fatalf("% .60x: wrote %.200s, but PayloadJSON says %v", data, buf.Bytes(), wantErr)
	case err != nil:
		t.Fatalf("% .60x: %v, but PayloadJSON gives %.200s", data, err, want)
	case n != int64(buf.Len()):
		t.Fatalf("% .60x: says %d bytes, wrote %d", data, n, buf.Len())
	case !bytes.Equal(buf.Bytes(), want) && !randomKeys(data):
		t.Fatalf("% .60x:\n got %.300s\nwant %.300s", data, buf.Bytes(), want)
	}
}

// randomKeys reports whether PayloadJSON's answer for data may change
// from call to call: when a map has keys that are not strings, their
// spelled-out forms can collide, and then Go's map order picks which
// value stays.
func randomKeys(data []byte) bool {
	var v any
	if cbor.Unmarshal(data, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case []any:
			return slices.ContainsFunc(v, walk)
		case cbor.Tag:
			return walk(v.Content)
		case map[any]any:
			for k, e := range v {
				if _, ok := k.(string); !ok && len(v) > 1 || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

func TestResultJSON(t *testing.T) {
	for _, s := range resultSeeds(t) {
		checkResult(t, s)
	}
}

func FuzzGatewayResult(f *testing.F) {
	for _, s := range resultSeeds(f) {
		if len(s) <= 4<<10 { // big ones slow the fuzzer; TestResultJSON has them
			f.Add(s)
		}
	}
	f.Fuzz(checkResult)
}
