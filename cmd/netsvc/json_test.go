package main

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

func TestParseJSONArg(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
	}{
		{"6", int64(6)},
		{"-6", int64(-6)},
		{"6.0", int64(6)},
		{"1e3", int64(1000)},
		{"1.5", 1.5},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"1e300", 1e300},
		{`"x"`, "x"},
		{"null", nil},
		{"[1, 2.5]", []any{int64(1), 2.5}},
		{`{"a": {"b": [7]}}`, map[string]any{"a": map[string]any{"b": []any{int64(7)}}}},
	} {
		got, err := parseJSONArg(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "hello", "1 2", "{", "1e400"} {
		if _, err := parseJSONArg(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPayloadValueIsJSONSafe(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[int]string{1: "a"}, `{"1":"a"}`},
		{map[string]any{"k": []byte("hi")}, `{"k":"aGk="}`},
		{[]any{math.NaN(), math.Inf(1), math.Inf(-1), 1.5}, `["NaN","+Inf","-Inf",1.5]`},
		{map[bool]int{true: 1}, `{"true":1}`},
		{int64(-3), `-3`},
		{uint64(math.MaxUint64), `18446744073709551615`},
		{"<tag>", `"<tag>"`},
	} {
		p, err := service.Encode(c.in)
		if err != nil {
			t.Fatal(err)
		}
		v, err := payloadValue(p)
		if err != nil {
			t.Fatalf("%#v: %v", c.in, err)
		}
		b, err := marshalJSON(v)
		if err != nil || string(b) != c.want {
			t.Errorf("%#v: got %s, %v; want %s", c.in, b, err, c.want)
		}
	}
	// A raw payload prints as base64 bytes.
	v, err := payloadValue(service.Payload{ContentType: service.ContentRaw, Data: []byte("hi")})
	if b, _ := marshalJSON(v); err != nil || string(b) != `"aGk="` {
		t.Errorf("raw: %s %v", b, err)
	}
}

func TestArith(t *testing.T) {
	for _, c := range []struct {
		op   string
		x, y any
		want any
	}{
		{"multiply", int64(6), int64(7), int64(42)},
		{"multiply", 1.5, int64(2), int64(3)},
		{"multiply", 1.5, 1.5, 2.25},
		{"multiply", uint64(1 << 62), int64(4), float64(1 << 64)},
		{"multiply", int64(math.MinInt64), int64(-1), float64(1 << 63)},
		{"add", int64(math.MaxInt64), int64(1), float64(1 << 63)},
		{"add", int64(-1), int64(-2), int64(-3)},
		{"add", 0.1, 0.2, 0.30000000000000004},
	} {
		got, err := arith(c.op, c.x, c.y)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s(%v, %v) = %#v, %v; want %#v", c.op, c.x, c.y, got, err, c.want)
		}
	}
	if _, err := arith("add", "1", int64(2)); err == nil {
		t.Error("a string added")
	}
}

// The gateway's reading of a call's body (registry.ArgsFromJSON), beside
// the command line's.
func TestArgsFromJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []any
	}{
		{"", []any{}},
		{" \n", []any{}},
		{"[]", []any{}},
		{"[6, 7]", []any{int64(6), int64(7)}},
		{`[1.5, "x", null, {"k": [2]}]`, []any{1.5, "x", nil, map[string]any{"k": []any{int64(2)}}}},
	} {
		got, err := registry.ArgsFromJSON([]byte(c.in))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for in, want := range map[string]string{
		`{"a": 1}`: "want a JSON array of arguments, like [6, 7]; got an object",
		`6`:        "got a number",
		`"x"`:      "got a string",
		`null`:     "got null",
		`[1,`:      "invalid JSON",
		`[1] 2`:    "more text after the value",
		`[1e400]`:  "out of range",
	} {
		if _, err := registry.ArgsFromJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}
