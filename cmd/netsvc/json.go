package main

import (
	"fmt"
	"strings"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// JSON on the command line and the Go values the service codec moves.
// The conversions live in package service (registry.ValueFromJSON,
// registry.JSONValue), shared with the console's HTTP gateway: integral
// numbers become int64, others float64; results are made JSON-safe.

// parseJSONArg reads one JSON argument.
func parseJSONArg(s string) (any, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty: want a JSON value")
	}
	v, err := registry.ValueFromJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not JSON (%v); quote strings, as in '\"text\"'", s, strings.TrimPrefix(err.Error(), "invalid JSON: "))
	}
	return v, nil
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

// payloadValue decodes a payload to a JSON-safe generic value.
func payloadValue(p service.Payload) (any, error) { return registry.JSONValue(p) }

// marshalJSON is json.Marshal without HTML escaping and without the
// trailing newline.
func marshalJSON(v any) ([]byte, error) { return registry.EncodeJSON(v) }
