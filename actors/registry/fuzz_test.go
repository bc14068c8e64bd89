package registry

import (
	"strings"
	"testing"
)

// Fuzz targets for the JSON edges: `go test` replays the seeds here and
// in testdata/fuzz; .ci/fuzz runs each briefly.

// FuzzArgsFromJSON checks arguments read from the command line or the
// HTTP gateway never panic, always encode, and decode back to as many
// arguments.
func FuzzArgsFromJSON(f *testing.F) {
	for _, s := range []string{`[6, 7]`, `["text", {"k": 1.5}]`, ``, ` `, `[]`, `[1e400]`, `[18446744073709551615]`,
		`[-9223372036854775809]`, `[1.0, 1e3, -0]`, `{"a": 1}`, `[[[[]]]]`, `[null, true, "\u00e9"]`, `[1] [2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		args, err := ArgsFromJSON(text)
		if err != nil {
			return
		}
		p, err := EncodeArgs(args...)
		if err != nil {
			t.Fatalf("ArgsFromJSON(%q) = %#v, which does not encode: %v", text, args, err)
		}
		if len(args) == 1 {
			if _, raw := args[0].(Raw); raw {
				return
			}
		}
		v, err := p.Value()
		if err != nil && strings.Contains(err.Error(), "exceeded max nested level") {
			return // the codec's limit against hostile payloads: a service answers "bad arguments"
		}
		if err != nil {
			t.Fatalf("arguments of %q do not decode back: %v", text, err)
		}
		back, _ := v.([]any)
		if len(back) != len(args) {
			t.Fatalf("ArgsFromJSON(%q): %d arguments decode back as %#v", text, len(args), v)
		}
		if _, err := EncodeJSON(jsonSafe(v)); err != nil {
			t.Fatalf("arguments of %q do not go back to JSON: %v", text, err)
		}
	})
}
