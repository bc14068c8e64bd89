package connection

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// split parses exactly one whole frame, failing the test otherwise.
func split(t *testing.T, frame []byte) (FrameKind, []byte) {
	t.Helper()
	kind, body, n, err := splitFrame(frame, DefaultMaxFrame)
	if err != nil {
		t.Fatalf("splitFrame: %v", err)
	}
	if n != len(frame) {
		t.Fatalf("splitFrame spans %d bytes, the frame has %d", n, len(frame))
	}
	return kind, body
}

func sampleHello() Hello {
	return Hello{Protocol: Protocol, Process: 0x0123456789abcdef, Node: "node-α", Role: registry.RoleServer,
		Group: "backend", Listen: "127.0.0.1:11111", Nonce: [NonceSize]byte{1, 2, 3, 31: 0xff},
		Extensions: []registry.Header{{Key: "identity", Value: "billing"}}}
}

func sampleEnvelope() *registry.Envelope {
	return &registry.Envelope{
		Kind: registry.KindReport,
		To:   registry.Address{Process: 0xfedcba9876543210, ID: 1<<64 - 1},
		From: registry.Address{Process: 7, ID: 300},
		Conv: 1<<64 - 1, Seq: 1 << 40,
		Subject: "prices.nyse.ibm", Pattern: "prices.>", ContentType: "application/cbor",
		Data: []byte{0, 1, 2, 0xff, 'x'},
	}
}

func availableChange(process bool) registry.Change {
	c := registry.Change{Kind: registry.Available, Process: process, Binding: registry.Binding{
		Name: "math", Address: registry.Address{Process: 42, ID: 9}, Audience: "*",
		Node: "n1", Hops: 3, Groups: []string{"web-services", "equipment"},
	}}
	if process {
		c.Binding = registry.Binding{Address: registry.Address{Process: 42}, Node: "n1", Hops: 1, Groups: []string{}}
	}
	return c
}

func TestFrameRoundTrip(t *testing.T) {
	t.Run("hello", func(t *testing.T) {
		for _, h := range []Hello{
			sampleHello(),
			{Protocol: Protocol, Process: 1, Role: registry.RoleClient}, // every string empty
			{Protocol: Protocol, Process: 1<<64 - 1, Node: strings.Repeat("n", 300), Role: registry.RoleClient, Group: "g"},
		} {
			kind, body := split(t, AppendHello(nil, h))
			if kind != FrameHello {
				t.Fatalf("kind %v, want hello", kind)
			}
			got, err := DecodeHello(body)
			if err != nil {
				t.Fatalf("DecodeHello: %v", err)
			}
			if !reflect.DeepEqual(got, h) {
				t.Fatalf("hello round trip:\n got %+v\nwant %+v", got, h)
			}
		}
	})
	t.Run("hello of another version", func(t *testing.T) {
		// The rest of an older or newer hello may be laid out otherwise:
		// the version alone decides, with a reason a person can act on.
		older := Protocol - 1
		_, body := split(t, AppendHello(nil, Hello{Protocol: older, Process: 1, Role: registry.RoleClient}))
		_, err := DecodeHello(body)
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Peer != older || !strings.Contains(err.Error(), fmt.Sprintf("peer speaks %d, this node %d", older, Protocol)) {
			t.Fatalf("DecodeHello of a version %d hello = %v", older, err)
		}
	})
	t.Run("proof, accept and move", func(t *testing.T) {
		for _, p := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
			kind, body := split(t, AppendProof(nil, p))
			got, err := DecodeProof(body)
			if kind != FrameProof || err != nil || !bytes.Equal(got, p) {
				t.Fatalf("proof round trip: %v %x %v", kind, got, err)
			}
		}
		if kind, body := split(t, AppendAccept(nil)); kind != FrameAccept || len(body) != 0 {
			t.Fatalf("accept = %v with %d body bytes", kind, len(body))
		}
		for _, servers := range [][]string{{}, {"10.0.0.1:11111", "b:2"}} {
			kind, body := split(t, AppendMove(nil, servers))
			got, err := DecodeMove(body)
			if kind != FrameMove || err != nil || !reflect.DeepEqual(got, servers) {
				t.Fatalf("move round trip: %v %q %v", kind, got, err)
			}
		}
	})
	t.Run("reject and bye", func(t *testing.T) {
		for _, k := range []FrameKind{FrameReject, FrameBye} {
			for _, reason := range []string{"", "exchange group mismatch: peer is in group other", strings.Repeat("é", 200)} {
				kind, body := split(t, AppendReason(nil, k, reason))
				if kind != k {
					t.Fatalf("kind %v, want %v", kind, k)
				}
				got, err := DecodeReason(body)
				if err != nil || got != reason {
					t.Fatalf("DecodeReason = %q, %v; want %q", got, err, reason)
				}
			}
		}
	})
	t.Run("announce", func(t *testing.T) {
		noGroups := availableChange(false)
		noGroups.Binding.Groups = []string{}
		noGroups.Binding.Audience = ""
		cases := map[string]struct{ in, want registry.Change }{
			"available":                {availableChange(false), availableChange(false)},
			"available without groups": {noGroups, noGroups},
			"available process":        {availableChange(true), availableChange(true)},
			"withdrawn": {
				registry.Change{Kind: registry.Withdrawn, Binding: availableChange(false).Binding},
				registry.Change{Kind: registry.Withdrawn, Binding: registry.Binding{Address: registry.Address{Process: 42, ID: 9}}},
			},
			"withdrawn while draining": {
				registry.Change{Kind: registry.Withdrawn, Draining: true, Binding: availableChange(false).Binding},
				registry.Change{Kind: registry.Withdrawn, Draining: true, Binding: registry.Binding{Address: registry.Address{Process: 42, ID: 9}}},
			},
			"withdrawn process": {
				registry.Change{Kind: registry.Withdrawn, Process: true, Binding: registry.Binding{Address: registry.Address{Process: 42}, Node: "n1"}},
				registry.Change{Kind: registry.Withdrawn, Process: true, Binding: registry.Binding{Address: registry.Address{Process: 42}}},
			},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				kind, body := split(t, AppendAnnounce(nil, tc.in))
				if kind != FrameAnnounce {
					t.Fatalf("kind %v, want announce", kind)
				}
				got, err := DecodeAnnounce(body)
				if err != nil {
					t.Fatalf("DecodeAnnounce: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("announce round trip:\n got %+v\nwant %+v", got, tc.want)
				}
			})
		}
	})
	t.Run("group", func(t *testing.T) {
		for _, k := range []registry.EventKind{registry.Joined, registry.Left} {
			in := registry.Change{Kind: k, Group: "equipment-agents", Binding: registry.Binding{Address: registry.Address{Process: 5, ID: 1 << 63}}}
			kind, body := split(t, AppendGroup(nil, in))
			if kind != FrameGroup {
				t.Fatalf("kind %v, want group", kind)
			}
			got, err := DecodeGroup(body)
			if err != nil {
				t.Fatalf("DecodeGroup: %v", err)
			}
			if !reflect.DeepEqual(got, in) {
				t.Fatalf("group round trip:\n got %+v\nwant %+v", got, in)
			}
		}
	})
	t.Run("envelope", func(t *testing.T) {
		empty := &registry.Envelope{Kind: registry.KindRequest, To: registry.Address{Process: 1}, From: registry.Address{Process: 2}}
		extended := sampleEnvelope()
		extended.Kind, extended.NotRun = registry.KindFailure, true
		extended.Headers = []registry.Header{{Key: "traceparent", Value: "00-abc-def-01"}, {}}
		cancel := &registry.Envelope{Kind: registry.KindCancel, To: registry.Address{Process: 1, ID: 2}, From: registry.Address{Process: 3, ID: 4}, Conv: 99}
		for _, e := range []*registry.Envelope{sampleEnvelope(), empty, extended, cancel} {
			frame := AppendEnvelope(nil, e)
			if len(frame) != EnvelopeSize(e) {
				t.Fatalf("EnvelopeSize = %d, the frame has %d bytes", EnvelopeSize(e), len(frame))
			}
			kind, body := split(t, frame)
			if kind != FrameEnvelope {
				t.Fatalf("kind %v, want envelope", kind)
			}
			k, hops, to, from, ok := envelopeRoute(body)
			if !ok || k != e.Kind || hops != 0 || to != e.To || from != e.From.Process {
				t.Fatalf("envelopeRoute = %v %d %v %v %v", k, hops, to, from, ok)
			}
			for _, interned := range []internTable{nil, {}} {
				got, err := DecodeEnvelope(body, interned)
				if err != nil {
					t.Fatalf("DecodeEnvelope: %v", err)
				}
				if !reflect.DeepEqual(got, e) {
					t.Fatalf("envelope round trip:\n got %+v\nwant %+v", got, e)
				}
			}
		}
	})
	t.Run("envelope data is copied", func(t *testing.T) {
		_, body := split(t, AppendEnvelope(nil, sampleEnvelope()))
		got, err := DecodeEnvelope(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range body {
			body[i] = 0xaa
		}
		if !bytes.Equal(got.Data, sampleEnvelope().Data) {
			t.Fatalf("decoded data shares the frame's memory: %x", got.Data)
		}
	})
	t.Run("ping and pong", func(t *testing.T) {
		for _, k := range []FrameKind{FramePing, FramePong} {
			for _, nonce := range []uint64{0, 1, 1<<64 - 1} {
				kind, body := split(t, AppendPing(nil, k, nonce))
				if kind != k {
					t.Fatalf("kind %v, want %v", kind, k)
				}
				got, n := binary.Uvarint(body)
				if n != len(body) || got != nonce {
					t.Fatalf("ping nonce = %d (%d bytes of %d), want %d", got, n, len(body), nonce)
				}
			}
		}
	})
	t.Run("synced", func(t *testing.T) {
		kind, body := split(t, AppendSynced(nil))
		if kind != FrameSynced || len(body) != 0 {
			t.Fatalf("synced = %v with %d body bytes", kind, len(body))
		}
	})
	t.Run("frames append to what is there", func(t *testing.T) {
		var b []byte
		b = AppendHello(b, sampleHello())
		b = AppendAnnounce(b, availableChange(false))
		b = AppendEnvelope(b, sampleEnvelope())
		b = AppendSynced(b)
		var kinds []FrameKind
		for len(b) > 0 {
			kind, _, n, err := splitFrame(b, DefaultMaxFrame)
			if err != nil || n == 0 {
				t.Fatalf("splitFrame = %d, %v", n, err)
			}
			kinds = append(kinds, kind)
			b = b[n:]
		}
		want := []FrameKind{FrameHello, FrameAnnounce, FrameEnvelope, FrameSynced}
		if !reflect.DeepEqual(kinds, want) {
			t.Fatalf("kinds %v, want %v", kinds, want)
		}
	})
}

func TestFrameKindString(t *testing.T) {
	cases := map[FrameKind]string{FrameHello: "hello", FrameReject: "reject", FrameEnvelope: "envelope",
		FrameSynced: "synced", FrameProof: "proof", FrameMove: "move", 0: "unknown(0)", 13: "unknown(13)", 255: "unknown(255)"}
	for k, want := range cases {
		if got := k.String(); got != want {
			t.Errorf("FrameKind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestSplitFramePartial(t *testing.T) {
	frames := map[string][]byte{
		"hello":    AppendHello(nil, sampleHello()),
		"envelope": AppendEnvelope(nil, sampleEnvelope()),
		"big":      AppendEnvelope(nil, &registry.Envelope{Kind: registry.KindReport, To: registry.Address{Process: 1}, From: registry.Address{Process: 2}, Data: make([]byte, 70000)}),
		"synced":   AppendSynced(nil),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < len(frame); i++ {
				kind, body, n, err := splitFrame(frame[:i], DefaultMaxFrame)
				if err != nil || n != 0 || body != nil || kind != 0 {
					t.Fatalf("prefix of %d/%d bytes: kind %v, %d body bytes, n %d, err %v; want more needed", i, len(frame), kind, len(body), n, err)
				}
			}
			// A whole frame followed by the start of the next one.
			more := append(append([]byte(nil), frame...), frame[:len(frame)/2]...)
			_, _, n, err := splitFrame(more, DefaultMaxFrame)
			if err != nil || n != len(frame) {
				t.Fatalf("frame plus partial: n %d, err %v; want %d", n, err, len(frame))
			}
		})
	}
}

func TestSplitFrameErrors(t *testing.T) {
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cases := []struct {
		name    string
		in      []byte
		max     int
		tooBig  bool
		wantErr bool
	}{
		{name: "absurd length", in: append(uv(1<<40), byte(FrameHello)), max: DefaultMaxFrame, tooBig: true, wantErr: true},
		{name: "max uint64 length", in: uv(1<<64 - 1), max: DefaultMaxFrame, tooBig: true, wantErr: true},
		{name: "one over the limit", in: uv(1025), max: 1024, tooBig: true, wantErr: true},
		{name: "at the limit", in: uv(1024), max: 1024, wantErr: false},
		{name: "empty frame", in: []byte{0, 1, 2}, max: DefaultMaxFrame, wantErr: true},
		{name: "overlong varint", in: bytes.Repeat([]byte{0xff}, 11), max: DefaultMaxFrame, wantErr: true},
		{name: "ten continuation bytes", in: bytes.Repeat([]byte{0x80}, binary.MaxVarintLen64), max: DefaultMaxFrame, wantErr: true},
		{name: "nine continuation bytes: need more", in: bytes.Repeat([]byte{0x80}, binary.MaxVarintLen64-1), max: DefaultMaxFrame, wantErr: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, n, err := splitFrame(tc.in, tc.max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrFrameTooLarge) != tc.tooBig {
				t.Fatalf("err = %v, want ErrFrameTooLarge %v", err, tc.tooBig)
			}
			if n != 0 {
				t.Fatalf("n = %d for bad or incomplete input", n)
			}
		})
	}
}

// truncations decodes every proper prefix of body (and body with a stray
// byte added), expecting an error each time.
func truncations(t *testing.T, body []byte, decode func([]byte) error) {
	t.Helper()
	for i := 0; i < len(body); i++ {
		if err := decode(append([]byte(nil), body[:i]...)); err == nil {
			t.Fatalf("decoding %d of %d body bytes succeeded", i, len(body))
		}
	}
	if err := decode(append(append([]byte(nil), body...), 0)); err == nil {
		t.Fatalf("decoding the body plus a stray byte succeeded")
	}
	if err := decode(body); err != nil {
		t.Fatalf("decoding the whole body: %v", err)
	}
}

func bodyOf(t *testing.T, frame []byte) []byte {
	_, body := split(t, frame)
	return body
}

func TestDecodeTruncated(t *testing.T) {
	t.Run("hello", func(t *testing.T) {
		truncations(t, bodyOf(t, AppendHello(nil, sampleHello())), func(b []byte) error { _, err := DecodeHello(b); return err })
	})
	t.Run("reject", func(t *testing.T) {
		truncations(t, bodyOf(t, AppendReason(nil, FrameReject, "no")), func(b []byte) error { _, err := DecodeReason(b); return err })
	})
	t.Run("announce available", func(t *testing.T) {
		truncations(t, bodyOf(t, AppendAnnounce(nil, availableChange(false))), func(b []byte) error { _, err := DecodeAnnounce(b); return err })
	})
	t.Run("announce withdrawn", func(t *testing.T) {
		c := registry.Change{Kind: registry.Withdrawn, Binding: registry.Binding{Address: registry.Address{Process: 3, ID: 200}}}
		truncations(t, bodyOf(t, AppendAnnounce(nil, c)), func(b []byte) error { _, err := DecodeAnnounce(b); return err })
	})
	t.Run("group", func(t *testing.T) {
		c := registry.Change{Kind: registry.Joined, Group: "g", Binding: registry.Binding{Address: registry.Address{Process: 3, ID: 200}}}
		truncations(t, bodyOf(t, AppendGroup(nil, c)), func(b []byte) error { _, err := DecodeGroup(b); return err })
	})
	t.Run("envelope header", func(t *testing.T) {
		// The data runs to the end of the body, so only cuts inside the
		// header fields can be detected.
		e := sampleEnvelope()
		e.Data = nil
		body := bodyOf(t, AppendEnvelope(nil, e))
		for i := 0; i < len(body); i++ {
			if _, err := DecodeEnvelope(body[:i], nil); err == nil {
				t.Fatalf("decoding %d of %d header bytes succeeded", i, len(body))
			}
		}
		for i := 0; i < envToProcOffset+8+1+8; i++ {
			if _, _, _, _, ok := envelopeRoute(body[:i]); ok {
				t.Fatalf("envelopeRoute accepted %d bytes", i)
			}
		}
	})
}

func TestDecodeInvalid(t *testing.T) {
	hello := bodyOf(t, AppendHello(nil, sampleHello()))
	mut := func(b []byte, f func([]byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	t.Run("hello", func(t *testing.T) {
		cases := map[string]struct {
			body []byte
			want string
		}{
			"bad magic":      {mut(hello, func(b []byte) { b[0] = 'X' }), "bad magic"},
			"http request":   {[]byte("GET / HTTP/1.1\r\n"), "bad magic"},
			"short":          {[]byte("NSV"), "bad magic"},
			"empty":          {nil, "bad magic"},
			"no process":     {bodyOf(t, AppendHello(nil, Hello{Protocol: Protocol, Role: registry.RoleServer})), "no process id"},
			"unknown role 0": {bodyOf(t, AppendHello(nil, Hello{Protocol: Protocol, Process: 1})), "unknown role"},
			"unknown role 9": {bodyOf(t, AppendHello(nil, Hello{Protocol: Protocol, Process: 1, Role: 9})), "unknown role"},
			"no nonce":       {hello[:len(hello)-NonceSize-1], "truncated"},
			"extensions": {func() []byte {
				b := bodyOf(t, AppendHello(nil, Hello{Protocol: Protocol, Process: 1, Role: registry.RoleClient}))
				b[len(b)-1] = maxExtensions + 1 // the count, last when there are none
				return b
			}(), "extensions"},
		}
		for name, tc := range cases {
			if _, err := DecodeHello(tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
			}
		}
	})
	t.Run("announce", func(t *testing.T) {
		good := bodyOf(t, AppendAnnounce(nil, availableChange(false)))
		cases := map[string][]byte{
			"unknown kind 0": mut(good, func(b []byte) { b[0] = 0 }),
			"unknown kind 7": mut(good, func(b []byte) { b[0] = 7 }),
			"no process":     bodyOf(t, AppendAnnounce(nil, registry.Change{Kind: registry.Withdrawn})),
			"truncated id": func() []byte {
				b := []byte{announceWithdrawn, 0}
				b = binary.BigEndian.AppendUint64(b, 1)
				return append(b, 1, 2, 3)
			}(),
			"absurd group count": func() []byte {
				b := []byte{announceAvailable, 0}
				b = binary.BigEndian.AppendUint64(b, 1)
				b = binary.BigEndian.AppendUint64(b, 1)
				b = appendString(appendString(appendString(b, "n"), "*"), "node")
				b = binary.AppendUvarint(b, 0)
				return binary.AppendUvarint(b, 1<<62)
			}(),
		}
		for name, body := range cases {
			if c, err := DecodeAnnounce(body); err == nil {
				t.Errorf("%s: decoded %+v, want an error", name, c)
			}
		}
	})
	t.Run("group", func(t *testing.T) {
		cases := map[string]registry.Change{
			"empty group": {Kind: registry.Joined, Binding: registry.Binding{Address: registry.Address{Process: 1, ID: 1}}},
		}
		for name, c := range cases {
			if _, err := DecodeGroup(bodyOf(t, AppendGroup(nil, c))); err == nil {
				t.Errorf("%s: decoded, want an error", name)
			}
		}
	})
	t.Run("envelope", func(t *testing.T) {
		good := bodyOf(t, AppendEnvelope(nil, sampleEnvelope()))
		for _, k := range []byte{0, byte(registry.KindCancel) + 1, 255} {
			if e, err := DecodeEnvelope(mut(good, func(b []byte) { b[0] = k }), nil); err == nil {
				t.Errorf("envelope kind %d: decoded %+v, want an error", k, e)
			}
			if _, _, _, _, ok := envelopeRoute(mut(good, func(b []byte) { b[0] = k })); ok {
				t.Errorf("envelopeRoute accepted kind %d", k)
			}
		}
		if e, err := DecodeEnvelope(good[:envFixedOverhead-1], nil); err == nil {
			t.Errorf("truncated ids: decoded %+v", e)
		}
	})
}

// TestDecodeGarbage feeds every decoder random bytes and mutations of
// valid frames: none may panic, whatever it returns.
func TestDecodeGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	valid := [][]byte{
		bodyOf(t, AppendHello(nil, sampleHello())),
		bodyOf(t, AppendAnnounce(nil, availableChange(false))),
		bodyOf(t, AppendAnnounce(nil, availableChange(true))),
		bodyOf(t, AppendGroup(nil, registry.Change{Kind: registry.Joined, Group: "g", Binding: registry.Binding{Address: registry.Address{Process: 1}}})),
		bodyOf(t, AppendEnvelope(nil, sampleEnvelope())),
	}
	decoders := map[string]func([]byte){
		"envelope": func(b []byte) { _, _ = DecodeEnvelope(b, internTable{}) },
		"route":    func(b []byte) { envelopeRoute(b) },
		"hello":    func(b []byte) { _, _ = DecodeHello(b) },
		"announce": func(b []byte) { _, _ = DecodeAnnounce(b) },
		"group":    func(b []byte) { _, _ = DecodeGroup(b) },
		"reason":   func(b []byte) { _, _ = DecodeReason(b) },
		"split":    func(b []byte) { splitFrame(b, 1<<16) },
		"length":   func(b []byte) { frameLength(b) },
	}
	decoded := 0
	for i := 0; i < 20000; i++ {
		var in []byte
		if i%2 == 0 {
			in = make([]byte, rng.IntN(80))
			for j := range in {
				in[j] = byte(rng.Uint32())
			}
		} else {
			in = append([]byte(nil), valid[rng.IntN(len(valid))]...)
			for n := 1 + rng.IntN(4); n > 0 && len(in) > 0; n-- {
				in[rng.IntN(len(in))] ^= byte(1 + rng.IntN(255))
			}
			in = in[:rng.IntN(len(in)+1)]
		}
		for name, decode := range decoders {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s decoder panicked on %x: %v", name, in, r)
					}
				}()
				decode(in)
			}()
		}
		if _, err := DecodeEnvelope(in, nil); err == nil {
			decoded++
		}
	}
	// The mutations must reach past the first checks now and then, or the
	// loop tests nothing beyond them.
	if decoded == 0 {
		t.Fatalf("no input decoded as an envelope: the garbage loop does not exercise the decoder")
	}
}

// TestDecodeFrame checks the decoder a service's actor uses on envelopes
// a link hands over still encoded: it reads a run of frames one by one,
// and agrees with DecodeEnvelope.
func TestDecodeFrame(t *testing.T) {
	es := []*registry.Envelope{sampleEnvelope(),
		{Kind: registry.KindRequest, To: registry.Address{Process: 1, ID: 2}, From: registry.Address{Process: 3}, Conv: 4, Subject: "multiply", ContentType: "application/cbor", Data: []byte{0x82, 6, 7}},
		{Kind: registry.KindMessage, To: registry.Address{Process: 1}, From: registry.Address{Process: 3, ID: 1}, Seq: 9, Subject: "id", Pattern: "description"},
	}
	var run []byte
	for _, e := range es {
		run = AppendEnvelope(run, e)
	}
	rest := run
	for i, want := range es {
		var got registry.Envelope
		var err error
		if rest, err = DecodeFrame(rest, &got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("frame %d:\n got %+v\nwant %+v", i, got, *want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the run", len(rest))
	}
	// Cut anywhere inside a header field, a frame does not decode.
	e := sampleEnvelope()
	e.Data = nil
	frame := AppendEnvelope(nil, e)
	for i := 0; i < len(frame); i++ {
		var got registry.Envelope
		if _, err := DecodeFrame(frame[:i], &got); err == nil {
			t.Fatalf("decoded %d of %d bytes", i, len(frame))
		}
	}
	// Whatever DecodeEnvelope accepts, DecodeFrame reads the same; it
	// never panics on mutations of a valid frame.
	rng := rand.New(rand.NewPCG(3, 4))
	valid := AppendEnvelope(nil, sampleEnvelope())
	for i := 0; i < 20000; i++ {
		in := append([]byte(nil), valid...)
		for n := 1 + rng.IntN(3); n > 0; n-- {
			in[rng.IntN(len(in))] ^= byte(1 + rng.IntN(255))
		}
		in = in[:rng.IntN(len(in)+1)]
		var got registry.Envelope
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("DecodeFrame panicked on %x: %v", in, r)
				}
			}()
			_, ferr = DecodeFrame(in, &got)
		}()
		kind, body, n, err := splitFrame(in, len(in))
		if err != nil || n == 0 || kind != FrameEnvelope {
			continue
		}
		if want, err := DecodeEnvelope(body, nil); err == nil {
			if ferr != nil || !reflect.DeepEqual(&got, want) {
				t.Fatalf("on %x DecodeEnvelope gives %+v, DecodeFrame %+v, %v", in, *want, got, ferr)
			}
		}
	}
}

// TestEnvelopeRejectsUnknownFlags checks that every reader of envelopes
// refuses flags this version does not define (a later one may give them
// a meaning only with another protocol version), and that a deadline or
// headers cut short are refused too.
func TestEnvelopeRejectsUnknownFlags(t *testing.T) {
	e := sampleEnvelope()
	e.Deadline = time.Now().Add(time.Minute).UnixNano()
	e.Headers = []registry.Header{{Key: "k", Value: "v"}}
	good := AppendEnvelope(nil, e)
	_, body := split(t, good)
	if err := checkEnvelope(body); err != nil {
		t.Fatalf("checkEnvelope refuses a good envelope: %v", err)
	}
	for bit := range 8 {
		if envKnown&(1<<bit) != 0 {
			continue
		}
		frame := append([]byte(nil), good...)
		_, b := split(t, frame)
		b[envFlagsOffset] |= 1 << bit
		var got registry.Envelope
		if _, err := DecodeFrame(frame, &got); err == nil {
			t.Errorf("DecodeFrame accepted flag bit %d", bit)
		}
		if _, err := DecodeEnvelope(b, nil); err == nil {
			t.Errorf("DecodeEnvelope accepted flag bit %d", bit)
		}
		if err := checkEnvelope(b); err == nil {
			t.Errorf("checkEnvelope accepted flag bit %d", bit)
		}
	}
	// Cut inside the deadline and inside the headers: the strings after
	// them would otherwise be read from the wrong place.
	ext := envFixedOverhead + uvarintLen(e.Conv) + uvarintLen(e.Seq)
	for _, cut := range []int{ext + 4, ext + 8 + 2} {
		b := body[:cut]
		if err := checkEnvelope(b); err == nil {
			t.Errorf("checkEnvelope accepted an envelope cut at %d", cut)
		}
		if _, err := DecodeEnvelope(b, nil); err == nil {
			t.Errorf("DecodeEnvelope accepted an envelope cut at %d", cut)
		}
	}
}

// TestEnvelopeDeadlineTravelsAsTimeLeft checks that a deadline crosses
// the wire as the time left and is counted again from receipt.
func TestEnvelopeDeadlineTravelsAsTimeLeft(t *testing.T) {
	e := sampleEnvelope()
	e.Kind = registry.KindRequest
	e.Deadline = time.Now().Add(300 * time.Millisecond).UnixNano()
	frame := AppendEnvelope(nil, e)
	var got registry.Envelope
	if _, err := DecodeFrame(frame, &got); err != nil {
		t.Fatal(err)
	}
	left := time.Until(time.Unix(0, got.Deadline))
	if left <= 0 || left > 300*time.Millisecond {
		t.Fatalf("deadline decoded %v from now, want within the 300ms sent", left)
	}
	e.Deadline = time.Now().Add(-time.Second).UnixNano() // already past: it arrives past
	if _, err := DecodeFrame(AppendEnvelope(nil, e), &got); err != nil || time.Until(time.Unix(0, got.Deadline)) > time.Millisecond {
		t.Fatalf("an expired deadline decoded %v from now (%v)", time.Until(time.Unix(0, got.Deadline)), err)
	}
}

// TestEnvelopeCompactFields checks the two fields an envelope leaves off
// the wire: a pattern that is the subject, and a content type of the
// codec's; both come back as they were sent, in every decoder, and what
// they save is what the frame is shorter by.
func TestEnvelopeCompactFields(t *testing.T) {
	base := func(subject, pattern, ctype string) *registry.Envelope {
		return &registry.Envelope{Kind: registry.KindReport, To: registry.Address{Process: 1, ID: 2},
			From: registry.Address{Process: 3, ID: 4}, Subject: subject, Pattern: pattern, ContentType: ctype, Data: make([]byte, 100)}
	}
	full := envFixedOverhead + 2 + stringLen("rep.next")*2 + stringLen(registry.ContentRaw) + 100
	cases := []struct {
		e     *registry.Envelope
		saved int
	}{
		{base("rep.next", "rep.next", registry.ContentRaw), stringLen("rep.next") + stringLen(registry.ContentRaw)},
		{base("rep.next", "rep.next", "text/plain"), stringLen("rep.next") + stringLen(registry.ContentRaw) - stringLen("text/plain")},
		{base("rep.next", "rep.*", registry.ContentCBOR), stringLen(registry.ContentRaw) + stringLen("rep.next") - stringLen("rep.*")},
		{base("rep.next", "rep.*", registry.ContentJSON), stringLen(registry.ContentRaw) + stringLen("rep.next") - stringLen("rep.*")},
		{base("rep.next", "", ""), stringLen(registry.ContentRaw) + stringLen("rep.next") - 2},
		{base("", "", registry.ContentCBOR), 2*stringLen("rep.next") + stringLen(registry.ContentRaw) - 2},
	}
	for _, c := range cases {
		frame := AppendEnvelope(nil, c.e)
		if len(frame) != EnvelopeSize(c.e) {
			t.Fatalf("%q %q %q: EnvelopeSize %d, frame %d", c.e.Subject, c.e.Pattern, c.e.ContentType, EnvelopeSize(c.e), len(frame))
		}
		if body := len(frame) - headerLen(len(frame)); body != full-c.saved {
			t.Errorf("%q %q %q: body of %d bytes, want %d", c.e.Subject, c.e.Pattern, c.e.ContentType, body, full-c.saved)
		}
		var got registry.Envelope
		if _, err := DecodeFrame(frame, &got); err != nil || !reflect.DeepEqual(&got, c.e) {
			t.Fatalf("DecodeFrame = %+v, %v; want %+v", got, err, *c.e)
		}
		_, body := split(t, frame)
		if err := checkEnvelope(body); err != nil {
			t.Fatalf("checkEnvelope: %v", err)
		}
		if e, err := DecodeEnvelope(body, internTable{}); err != nil || !reflect.DeepEqual(e, c.e) {
			t.Fatalf("DecodeEnvelope = %+v, %v; want %+v", e, err, *c.e)
		}
	}
}
