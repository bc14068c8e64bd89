package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/netsvc-go/netsvc/service"
)

// JSON on the command line and the Go values the service codec moves.
//
// In: each argument is one JSON text. Numbers are read exactly
// (json.Decoder.UseNumber): an integral one becomes an int64 (a uint64
// past int64), anything else a float64, so a method taking int and one
// taking float64 can both be called from JSON.
//
// Out: payloads decode to generic values (service.Payload.Value), which
// are made JSON-safe: maps with non-string keys get string keys, []byte
// stays []byte (base64 in JSON, as encoding/json writes it), CBOR tags
// become {"tag": N, "value": V}, and NaN and the infinities, which JSON
// cannot hold, become the strings "NaN", "+Inf" and "-Inf".

// parseJSONArg reads one JSON argument.
func parseJSONArg(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("empty: want a JSON value")
		}
		return nil, fmt.Errorf("%q is not JSON (%v); quote strings, as in '\"text\"'", s, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%q has more after its JSON value", s)
	}
	return fromJSON(v)
}

// parseJSONArgs reads call arguments.
func parseJSONArgs(args []string) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		v, err := parseJSONArg(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out[i] = v
	}
	return out, nil
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

// payloadValue decodes a payload to a JSON-safe generic value.
func payloadValue(p service.Payload) (any, error) {
	v, err := p.Value()
	if err != nil && (p.ContentType == service.ContentCBOR || p.ContentType == "") {
		// Value wants string map keys; decode maps of any key instead.
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
			out[mapKey(k)] = jsonSafe(e)
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

// mapKey turns a CBOR map key into a JSON object key.
func mapKey(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	}
	b, err := marshalJSON(jsonSafe(k))
	if err != nil {
		return fmt.Sprint(k)
	}
	return string(b)
}

// marshalJSON is json.Marshal without HTML escaping and without the
// trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
