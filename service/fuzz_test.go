package service

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Fuzz targets for what a service reads from the wire and the command
// line: subject patterns, payloads and call arguments. `go test` replays
// the seeds here and in testdata/fuzz; `go test -run '^$' -fuzz
// '^FuzzPattern$' ./service` explores further (.ci/fuzz runs each one
// briefly).

// FuzzPattern checks CompilePattern and Match never panic, and that Match
// agrees with a reference matcher built on regular expressions.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"prices.*", "prices.ibm"}, {"prices.>", "prices.nyse.ibm"}, {"pri*.ibm", "prices.ibm"},
		{"pr?ces.ibm", "prïces.ibm"}, {"*", "a.b"}, {">", ""}, {"a.*.>", "a.b"}, {"a*c*e", "abcde"},
		{"??", "éé"}, {"prices.ibm", "prices.ibm"}, {"a..b", "a..b"}, {"a.>.b", "a.x.b"}, {"*?*", "\xff"},
		{"x", ""}, {"", "x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		got := p.Match(subject)
		if !strings.ContainsAny(pattern, "*?>") && got != (pattern == subject) {
			t.Fatalf("exact pattern %q: Match(%q) = %v", pattern, subject, got)
		}
		if !utf8.ValidString(pattern) || !utf8.ValidString(subject) {
			return // regular expressions read invalid UTF-8 their own way
		}
		if want := referenceMatch(pattern, subject); got != want {
			t.Fatalf("pattern %q: Match(%q) = %v, reference says %v", pattern, subject, got, want)
		}
	})
}

// referenceMatch is rule 19 as one regular expression per pattern:
// "*" alone is any one word, ">" last is one or more words, and within
// a word "*" is any run of characters and "?" one character.
func referenceMatch(pattern, subject string) bool {
	if !strings.ContainsAny(pattern, "*?>") {
		return pattern == subject
	}
	var re strings.Builder
	re.WriteString(`(?s)^`)
	for i, w := range strings.Split(pattern, ".") {
		if i > 0 {
			re.WriteString(`\.`)
		}
		if w == ">" {
			re.WriteString(`[^.]*(?:\.[^.]*)*`)
			continue
		}
		for _, r := range w {
			switch r {
			case '*':
				re.WriteString(`[^.]*`)
			case '?':
				re.WriteString(`[^.]`)
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
	}
	re.WriteString(`$`)
	return regexp.MustCompile(re.String()).MatchString(subject)
}

// Methods of the kinds services export, to decode fuzzed arguments into.
var fuzzMethods = []any{
	func(x, y int) int { return x * y },
	func(ctx context.Context, s string, f float64, b bool, u uint8) {},
	func(xs []float64, m map[string]any, bs []byte) {},
	func(v any, p *int, t time.Time) {},
	func(r struct {
		Name string `cbor:"name"`
		Tags []string
		Next *struct{ X int }
	}) {
	},
	func(r Raw) {},
	func(b []byte) {},
	func() {},
}

// FuzzPayloadDecode feeds arbitrary bytes, under each content type, to
// what reads payloads: a method's argument decoding, Payload.Value and
// registry.JSONValue. None may panic, and a value registry.JSONValue returns must marshal.
func FuzzPayloadDecode(f *testing.F) {
	for _, args := range [][]any{
		{6, 7}, {"text", 1.5, true, uint8(3)}, {[]float64{1, 2}, map[string]any{"k": []any{1, "x"}}, []byte("b")},
		{nil, 5, time.Unix(0, 0).UTC()}, {map[string]any{"name": "n", "Tags": []string{"a"}}}, {},
	} {
		p, err := registry.EncodeArgs(args...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Data, uint8(0))
	}
	f.Add([]byte(`[6, 7]`), uint8(2))
	f.Add([]byte{0xa1, 0x01, 0x02}, uint8(0))                         // {1: 2}: a key that is not a string
	f.Add([]byte{0xc1, 0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}, uint8(0)) // epoch time +Inf
	f.Add([]byte{0x9f, 0x01, 0xff}, uint8(0))                         // an indefinite array
	f.Add([]byte{0x9a, 0xff, 0xff, 0xff, 0xff}, uint8(0))
	f.Add([]byte("raw bytes"), uint8(3))
	contentTypes := []string{ContentCBOR, "", ContentJSON, ContentRaw, "text/plain"}
	methods := make([]*method, len(fuzzMethods))
	for i, fn := range fuzzMethods {
		methods[i] = newMethod("m", fn, &Request{})
		if methods[i].err != nil {
			f.Fatal(methods[i].err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ct uint8) {
		p := Payload{ContentType: contentTypes[int(ct)%len(contentTypes)], Data: data}
		for _, m := range methods {
			m.decode(&registry.Envelope{Kind: registry.KindRequest, Subject: "m", ContentType: p.ContentType, Data: data})
		}
		var anything any
		_ = p.Decode(&anything)
		_, _ = p.Value()
		v, err := registry.JSONValue(p)
		if err != nil {
			return
		}
		if _, err := registry.EncodeJSON(v); err != nil {
			t.Fatalf("registry.JSONValue of %x (%s) = %#v, which does not marshal: %v", data, p.ContentType, v, err)
		}
	})
}
