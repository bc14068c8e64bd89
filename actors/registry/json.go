package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// JSON at the edges (the command line, the console's HTTP gateway) and
// the Go values the codec moves.
//
// In: numbers are read exactly (json.Decoder.UseNumber): an integral one
// becomes an int64 (a uint64 past int64), anything else a float64, so a
// method taking int and one taking float64 can both be called from JSON.
// Objects become map[string]any, arrays []any.
//
// Out: payloads decode to generic values (Payload.Value), which are made
// JSON-safe: maps with non-string keys get string keys, []byte stays
// []byte (base64 in JSON, as encoding/json writes it), CBOR tags become
// {"tag": N, "value": V}, and NaN and the infinities, which JSON cannot
// hold, become the strings "NaN", "+Inf" and "-Inf"; so do times past
// the years JSON's format has (0 to 9999), as RFC 3339 text.

// ValueFromJSON reads one JSON text into a Go value the codec moves:
// integral numbers as int64 (uint64 past int64's range), others as
// float64. The error says what is wrong with the text.
func ValueFromJSON(text []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: want a JSON value")
		}
		return nil, fmt.Errorf("invalid JSON: %v", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: more text after the value")
	}
	return fromJSON(v)
}

// ArgsFromJSON reads call arguments given as one JSON array, such as
// `[6, 7]` or `["text", {"k": 1.5}]`, converting each element as
// ValueFromJSON does. Empty text (only white space) is no arguments.
func ArgsFromJSON(text []byte) ([]any, error) {
	if len(bytes.TrimSpace(text)) == 0 {
		return []any{}, nil
	}
	v, err := ValueFromJSON(text)
	if err != nil {
		return nil, err
	}
	args, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON array of arguments, like [6, 7]; got %s", jsonKind(v))
	}
	return args, nil
}

// JSONValue decodes a payload into a generic value that encoding/json
// can always marshal (see the conversions above). A raw payload is its
// bytes (base64 in JSON).
func JSONValue(p Payload) (any, error) {
	v, err := p.Value()
	if err != nil && (p.ContentType == ContentCBOR || p.ContentType == "") {
		// Maps with keys Value cannot spell out: decode them as they are.
		var g any
		if cbor.Unmarshal(p.Data, &g) != nil {
			return nil, err
		}
		v, err = g, nil
	}
	if err != nil {
		return nil, err
	}
	return jsonSafe(v), nil
}

// PayloadJSON returns a payload as one JSON text (no trailing newline,
// no HTML escaping).
func PayloadJSON(p Payload) ([]byte, error) {
	v, err := JSONValue(p)
	if err != nil {
		return nil, err
	}
	return EncodeJSON(v)
}

// EncodeJSON is json.Marshal without HTML escaping, so "<" and "&" in
// values stay readable.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonErrorText drops encoding/json's package prefix from syntax errors.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON input"
	}
	return err.Error()
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, uint64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// fromJSON turns json.Numbers into int64, uint64 or float64, recursively.
func fromJSON(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return jsonNumber(v)
	case []any:
		for i, e := range v {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case map[string]any:
		for k, e := range v {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	}
	return v, nil
}

func jsonNumber(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(n.String(), 10, 64); err == nil {
		return u, nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("number %s is out of range", n)
	}
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), nil // 6.0 or 1e3
	}
	return f, nil
}

// jsonSafe makes a decoded value marshalable by encoding/json.
func jsonSafe(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonSafe(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[jsonMapKey(k)] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonSafe(e)
		}
		return out
	case float64:
		return jsonFloat(v)
	case float32:
		return jsonFloat(float64(v))
	case cbor.Tag:
		return map[string]any{"tag": v.Number, "value": jsonSafe(v.Content)}
	case cbor.RawTag:
		var c any
		if err := cbor.Unmarshal(v.Content, &c); err != nil {
			return map[string]any{"tag": v.Number, "value": []byte(v.Content)}
		}
		return map[string]any{"tag": v.Number, "value": jsonSafe(c)}
	case big.Int:
		return &v
	case cbor.SimpleValue:
		return map[string]any{"simple": uint8(v)}
	case time.Time:
		if y := v.Year(); y < 0 || y > 9999 {
			return v.Format(time.RFC3339Nano) // encoding/json refuses such years
		}
	}
	return v
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// jsonMapKey turns a CBOR map key into a JSON object key.
func jsonMapKey(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	}
	b, err := EncodeJSON(jsonSafe(k))
	if err != nil {
		return fmt.Sprint(k)
	}
	return string(b)
}
