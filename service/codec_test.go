package service_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// Raw payloads pass through calls untouched, to handlers taking []byte
// or service.Raw, and back from handlers returning a Raw.
func TestRawPayloadsPassThrough(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := start(t, rt, "raw", func(a *service.Agent) error {
		a.Export("bytes", func(b []byte) service.Raw {
			return service.Raw{ContentType: "text/plain", Data: append([]byte("got "), b...)}
		})
		a.Export("raw", func(r service.Raw) service.Raw {
			return service.Raw{ContentType: r.ContentType + "+echo", Data: r.Data}
		})
		a.Export("plain", func() service.Raw { return service.Raw{Data: []byte{1, 2, 3}} })
		return nil
	})

	res, err := rt.Call(ctx, addr, "bytes", service.Raw{ContentType: "text/plain", Data: []byte("hi")})
	if err != nil || res.ContentType != "text/plain" || string(res.Data) != "got hi" {
		t.Fatalf("raw to []byte: %+v, %v", res, err)
	}
	var b []byte
	if err := res.Decode(&b); err != nil || string(b) != "got hi" {
		t.Fatalf("Decode raw result: %q, %v", b, err)
	}
	var r service.Raw
	if err := res.Decode(&r); err != nil || r.ContentType != "text/plain" {
		t.Fatalf("Decode into Raw: %+v, %v", r, err)
	}
	var n int
	if err := res.Decode(&n); err == nil {
		t.Fatal("raw result decoded into an int")
	}
	if _, err := service.CallFor[int](ctx, rt, addr, "bytes", service.Raw{Data: []byte("x")}); err == nil {
		t.Fatal("CallFor[int] of a raw result succeeded")
	}

	// Encoded bytes reach a []byte handler too.
	res, err = rt.Call(ctx, addr, "bytes", []byte("cbor"))
	if err != nil || string(res.Data) != "got cbor" {
		t.Fatalf("CBOR bytes to []byte: %+v, %v", res, err)
	}
	// An empty content type means application/octet-stream.
	res, err = rt.Call(ctx, addr, "raw", service.Raw{Data: []byte("z")})
	if err != nil || res.ContentType != service.ContentRaw+"+echo" || string(res.Data) != "z" {
		t.Fatalf("raw to Raw: %+v, %v", res, err)
	}
	res, err = rt.Call(ctx, addr, "raw", service.Raw{ContentType: "application/x-thing", Data: []byte{0, 1}})
	if err != nil || res.ContentType != "application/x-thing+echo" || !reflect.DeepEqual(res.Data, []byte{0, 1}) {
		t.Fatalf("custom content type: %+v, %v", res, err)
	}
	res, err = rt.Call(ctx, addr, "plain")
	if err != nil || res.ContentType != service.ContentRaw || !reflect.DeepEqual(res.Data, []byte{1, 2, 3}) {
		t.Fatalf("Raw result without a content type: %+v, %v", res, err)
	}
	if v, err := res.Value(); err != nil || !reflect.DeepEqual(v, []byte{1, 2, 3}) {
		t.Fatalf("Value() of raw = %#v, %v", v, err)
	}
}

type item struct {
	Name  string
	Qty   int
	Price float64
	Tags  []string
	Attrs map[string]string
	When  time.Time
	Next  *item
}

// Structs, maps and nested values go through the codec intact, and an
// argument of one call never leaks into the next.
func TestCodecStructsAndMaps(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := start(t, rt, "store", func(a *service.Agent) error {
		a.Export("double", func(it item) item {
			it.Qty *= 2
			return it
		})
		a.Export("keys", func(m map[string]int) []string {
			var out []string
			for k := range m {
				out = append(out, k)
			}
			return out
		})
		a.Export("nested", func() map[string]any {
			return map[string]any{"a": 1, "b": []any{"x", true, nil}, "c": map[string]any{"d": -2.5}}
		})
		a.Export("nothing", func() {})
		return nil
	})
	when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	in := item{Name: "bolt", Qty: 3, Price: 1.25, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"},
		When: when, Next: &item{Name: "nut"}}
	out, err := service.CallFor[item](ctx, rt, addr, "double", in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Qty != 6 || out.Name != "bolt" || out.Price != 1.25 || !reflect.DeepEqual(out.Tags, in.Tags) ||
		!reflect.DeepEqual(out.Attrs, in.Attrs) || !out.When.Equal(when) || out.Next == nil || out.Next.Name != "nut" {
		t.Fatalf("struct round trip: %+v", out)
	}
	// The handler's argument storage is reused: the second call must not
	// see the first call's tags, attributes or pointer.
	out, err = service.CallFor[item](ctx, rt, addr, "double", item{Name: "washer", Qty: 1})
	if err != nil || out.Tags != nil || out.Attrs != nil || out.Next != nil || !out.When.IsZero() || out.Qty != 2 {
		t.Fatalf("second call: %+v, %v", out, err)
	}
	keys, err := service.CallFor[[]string](ctx, rt, addr, "keys", map[string]int{"a": 1})
	if err != nil || !reflect.DeepEqual(keys, []string{"a"}) {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	keys, err = service.CallFor[[]string](ctx, rt, addr, "keys", map[string]int{"b": 2})
	if err != nil || !reflect.DeepEqual(keys, []string{"b"}) {
		t.Fatalf("keys of the second map: %v, %v", keys, err)
	}

	res, err := rt.Call(ctx, addr, "nested")
	if err != nil {
		t.Fatal(err)
	}
	v, err := res.Value()
	want := map[string]any{"a": uint64(1), "b": []any{"x", true, nil}, "c": map[string]any{"d": -2.5}}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("nested Value() = %#v, %v", v, err)
	}
	res, err = rt.Call(ctx, addr, "nothing")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Value(); err != nil || v != nil {
		t.Fatalf("result of a method returning nothing: %#v, %v", v, err)
	}
}
