package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

func TestAddressParseFormatRoundTrip(t *testing.T) {
	for _, a := range []service.Address{
		{Process: 1, ID: 0},
		{Process: 0x9f3ab2c1d4e5f607, ID: 12},
		{Process: ^service.ProcessID(0), ID: ^uint64(0)},
		{Process: registry.NewProcessID(), ID: 7},
	} {
		s := a.String()
		back, err := service.ParseAddress(s)
		if err != nil || back != a {
			t.Fatalf("ParseAddress(%q) = %v, %v; want %v", s, back, err, a)
		}
		text, _ := a.MarshalText()
		var u service.Address
		if err := u.UnmarshalText(text); err != nil || u != a {
			t.Fatalf("text round trip of %v: %v, %v", a, u, err)
		}
	}
	if s := (service.Address{Process: 0x9f3ab2c1d4e5f607, ID: 12}).String(); s != "9f3ab2c1d4e5f607/12" {
		t.Fatalf("String() = %q", s)
	}
	if s := service.ProcessID(0xab).String(); s != "00000000000000ab" {
		t.Fatalf("ProcessID.String() = %q", s)
	}
	for _, bad := range []string{"", "abc", "0000000000000000/1", "xyz/1", "00000000000000ab/", "00000000000000ab/x", "00000000000000ab/18446744073709551616", "/1"} {
		if a, err := service.ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) = %v, want an error", bad, a)
		}
	}
	var u service.Address
	if err := u.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText accepted garbage")
	}
	if !(service.Address{}).IsZero() || (service.Address{ID: 1}).IsZero() {
		t.Error("IsZero")
	}
}

func TestProcessIDs(t *testing.T) {
	seen := map[service.ProcessID]bool{}
	for range 100 {
		p := registry.NewProcessID()
		if p == 0 || seen[p] {
			t.Fatalf("NewProcessID gave %v twice or zero", p)
		}
		seen[p] = true
		back, err := registry.ParseProcessID(p.String())
		if err != nil || back != p {
			t.Fatalf("ParseProcessID(%q) = %v, %v", p.String(), back, err)
		}
	}
	if _, err := registry.ParseProcessID("0"); err == nil {
		t.Error("ParseProcessID accepted zero")
	}
	var p service.ProcessID
	if err := p.UnmarshalText([]byte("zz")); err == nil {
		t.Error("UnmarshalText accepted zz")
	}
}

// Bindings and events read well as JSON, with addresses as strings.
func TestBindingJSON(t *testing.T) {
	b := service.Binding{Name: "math", Address: service.Address{Process: 0xab, ID: 3}, Audience: "*", Groups: []string{"g"},
		Local: true, Node: "n"}
	ev := service.RegistryEvent{Kind: service.Joined, Binding: b, Group: "g"}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{`"kind":"joined"`, `"address":"00000000000000ab/3"`, `"group":"g"`, `"groups":["g"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON %s lacks %s", s, want)
		}
	}
	var back struct {
		Binding service.Binding `json:"binding"`
	}
	if err := json.Unmarshal(data, &back); err != nil || back.Binding.Address != b.Address || back.Binding.Name != "math" {
		t.Fatalf("unmarshal: %+v, %v", back, err)
	}
	if got := ev.String(); got != "joined math (00000000000000ab/3) local group g" {
		t.Fatalf("RegistryEvent.String() = %q", got)
	}
	anon := service.RegistryEvent{Kind: service.Withdrawn, Binding: service.Binding{Address: b.Address}}
	if got := anon.String(); got != "withdrawn anonymous (00000000000000ab/3) remote" {
		t.Fatalf("String() = %q", got)
	}
}

func TestNamesOfKinds(t *testing.T) {
	for k, want := range map[service.EventKind]string{service.Available: "available", service.Withdrawn: "withdrawn",
		service.Joined: "joined", service.Left: "left", 0: "?"} {
		if k.String() != want {
			t.Errorf("EventKind(%d) = %q, want %q", k, k.String(), want)
		}
	}
	for k, want := range map[registry.Kind]string{registry.KindRequest: "request", registry.KindResponse: "response",
		registry.KindFailure: "failure", registry.KindReport: "report", registry.KindSubscribe: "subscribe",
		registry.KindUnsubscribe: "unsubscribe", registry.KindMessage: "message", registry.KindCancel: "cancel", 0: "?", 99: "kind?"} {
		if k.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", k, k.String(), want)
		}
	}
	if registry.Kind(0).Valid() || !registry.KindCancel.Valid() || registry.Kind(9).Valid() {
		t.Error("Kind.Valid")
	}
	if registry.RoleServer.String() != "server" || registry.RoleClient.String() != "client" || registry.Role(0).String() != "unknown" {
		t.Error("Role.String")
	}
	if service.Name("x").String() != "x" || service.Group("g").String() != "group g" || service.AllServices.String() != "all services" {
		t.Error("Target.String")
	}
	e := &registry.Envelope{Subject: "abc", Data: make([]byte, 10), Headers: []registry.Header{{Key: "k", Value: "vv"}}}
	if e.Size() != 64+3+10+2+1+2 {
		t.Errorf("Envelope.Size() = %d", e.Size())
	}
}

func TestFailureErrorText(t *testing.T) {
	tests := []struct {
		f    *service.Failure
		want string
	}{
		{&service.Failure{Code: 46, Description: "no such service", Origin: "netsvc", Details: "math"}, "netsvc: no such service (46): math"},
		{&service.Failure{Code: 99, Description: "out of stock", Origin: "shop"}, "shop: out of stock (99)"},
		{&service.Failure{Code: 99, Description: "out of stock", Details: "d"}, "out of stock (99): d"},
		{service.Fail(98, "x", ""), "x (98)"},
	}
	for _, tt := range tests {
		if got := tt.f.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if service.CodeTimedOut.String() != "timed out" || service.Code(123).String() != "code 123" {
		t.Error("Code.String")
	}
}

func TestFailureIsAndAs(t *testing.T) {
	f := &service.Failure{Code: service.CodeTimedOut, Description: "timed out", Origin: "netsvc", Details: "x"}
	wrapped := fmt.Errorf("calling: %w", f)
	if !errors.Is(wrapped, service.ErrTimedOut) || errors.Is(wrapped, service.ErrCancelled) {
		t.Fatal("errors.Is on a wrapped failure")
	}
	var got *service.Failure
	if !errors.As(wrapped, &got) || got != f {
		t.Fatal("errors.As")
	}
	// A target with an origin matches only that origin; one with details never.
	if !errors.Is(f, &service.Failure{Code: service.CodeTimedOut, Origin: "netsvc"}) ||
		errors.Is(f, &service.Failure{Code: service.CodeTimedOut, Origin: "app"}) ||
		errors.Is(f, &service.Failure{Code: service.CodeTimedOut, Details: "x"}) {
		t.Fatal("Failure.Is with origin or details")
	}
	if errors.Is(f, errors.New("timed out")) {
		t.Fatal("a failure matched a plain error")
	}
	sentinels := map[*service.Failure]service.Code{
		service.ErrNoSuchService: service.CodeNoSuchService, service.ErrNoSuchMethod: service.CodeNoSuchMethod,
		service.ErrBadArguments: service.CodeBadArguments, service.ErrHandlerError: service.CodeHandlerError,
		service.ErrWithdrawn: service.CodeWithdrawn, service.ErrLinkLost: service.CodeLinkLost,
		service.ErrTimedOut: service.CodeTimedOut, service.ErrOverloaded: service.CodeOverloaded,
		service.ErrPayloadTooLarge: service.CodePayloadTooLarge, service.ErrNotAuthorised: service.CodeNotAuthorised,
		service.ErrCancelled: service.CodeCancelled, service.ErrShutdown: service.CodeShutdown,
	}
	for s, c := range sentinels {
		if s.Code != c || !errors.Is(&service.Failure{Code: c, Origin: "o", Details: "d"}, s) {
			t.Errorf("sentinel for %v", c)
		}
	}
}

func TestAsFailure(t *testing.T) {
	if service.AsFailure(nil) != nil {
		t.Fatal("AsFailure(nil) != nil")
	}
	f := service.Fail(99, "x", "y")
	if service.AsFailure(fmt.Errorf("wrapped: %w", f)) != f {
		t.Fatal("a wrapped failure did not pass through")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if g := service.AsFailure(ctx.Err()); g.Code != service.CodeTimedOut || g.Origin != service.OriginRuntime {
		t.Fatalf("deadline → %+v", g)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if g := service.AsFailure(cctx.Err()); g.Code != service.CodeCancelled {
		t.Fatalf("cancel → %+v", g)
	}
	if g := service.AsFailure(errors.New("disk full")); g.Code != service.CodeHandlerError || g.Details != "disk full" {
		t.Fatalf("plain error → %+v", g)
	}
}

// Payload decoding: CBOR, JSON and raw content.
func TestPayloadDecodeAndValue(t *testing.T) {
	type item struct {
		Name string
		Qty  int
	}
	p, err := service.Encode(item{"bolt", 3})
	if err != nil || p.ContentType != service.ContentCBOR {
		t.Fatalf("Encode: %+v, %v", p, err)
	}
	var it item
	if err := p.Decode(&it); err != nil || it != (item{"bolt", 3}) {
		t.Fatalf("Decode: %+v, %v", it, err)
	}
	v, err := p.Value()
	if err != nil || !reflect.DeepEqual(v, map[string]any{"Name": "bolt", "Qty": uint64(3)}) {
		t.Fatalf("Value() = %#v, %v", v, err)
	}
	var wrong []int
	if err := p.Decode(&wrong); err == nil {
		t.Fatal("decoding a map into []int succeeded")
	}
	if err := (service.Payload{ContentType: service.ContentCBOR, Data: []byte{0xff, 0x00}}).Decode(&it); err == nil {
		t.Fatal("decoding garbage succeeded")
	}

	j := service.Payload{ContentType: service.ContentJSON, Data: []byte(`{"Name":"nut","Qty":5}`)}
	if err := j.Decode(&it); err != nil || it != (item{"nut", 5}) {
		t.Fatalf("JSON Decode: %+v, %v", it, err)
	}
	if v, err := j.Value(); err != nil || !reflect.DeepEqual(v, map[string]any{"Name": "nut", "Qty": float64(5)}) {
		t.Fatalf("JSON Value() = %#v, %v", v, err)
	}

	raw, err := service.Encode(service.Raw{Data: []byte{1, 2}})
	if err != nil || raw.ContentType != service.ContentRaw {
		t.Fatalf("Encode(Raw) = %+v, %v", raw, err)
	}
	var b []byte
	if err := raw.Decode(&b); err != nil || string(b) != "\x01\x02" {
		t.Fatalf("raw into []byte: %v, %v", b, err)
	}
	var r service.Raw
	if err := raw.Decode(&r); err != nil || r.ContentType != service.ContentRaw || len(r.Data) != 2 {
		t.Fatalf("raw into Raw: %+v, %v", r, err)
	}
	var n int
	if err := raw.Decode(&n); err == nil {
		t.Fatal("raw into int succeeded")
	}
	if v, err := raw.Value(); err != nil || !reflect.DeepEqual(v, []byte{1, 2}) {
		t.Fatalf("raw Value() = %#v, %v", v, err)
	}

	args, err := registry.EncodeArgs(1, "a", []int{2})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := args.Value(); !reflect.DeepEqual(v, []any{uint64(1), "a", []any{uint64(2)}}) {
		t.Fatalf("EncodeArgs decodes to %#v", v)
	}
	if _, err := registry.EncodeArgs(make(chan int)); err == nil || !strings.Contains(err.Error(), "argument 1") {
		t.Fatalf("EncodeArgs of a channel: %v", err)
	}
	if _, err := service.Encode(func() {}); err == nil {
		t.Fatal("Encode of a func succeeded")
	}
}

// TestServiceIDsAreRandom checks that a service's address cannot be
// guessed from its process's: ids are random 64-bit numbers, not 1, 2,
// 3 in the order services started.
func TestServiceIDsAreRandom(t *testing.T) {
	rt := newRuntime(t, service.Config{})
	seen := map[uint64]bool{}
	for i := range 8 {
		addr, err := rt.Start(context.Background(), fmt.Sprintf("s%d", i), service.SetupFunc(func(*service.Agent) error { return nil }))
		if err != nil {
			t.Fatal(err)
		}
		if addr.ID < 1<<32 || seen[addr.ID] {
			t.Fatalf("service %d got id %d (seen: %v): want a random, unique 64-bit id", i, addr.ID, seen)
		}
		seen[addr.ID] = true
	}
}
