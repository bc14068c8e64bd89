package connection

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Fuzz targets for the wire codec. `go test` replays the seeds below;
// `go test -fuzz FuzzDecodeEnvelope ./actors/connection` explores further.
// Each target checks that decoding never panics and that whatever decodes
// encodes back to something that decodes to the same value.

func seedFrames() [][]byte {
	return [][]byte{
		AppendHello(nil, sampleHello()),
		AppendHello(nil, Hello{Protocol: Protocol, Process: 1, Role: registry.RoleClient}),
		AppendReason(nil, FrameReject, "exchange group mismatch"),
		AppendReason(nil, FrameBye, "node stopping"),
		AppendAnnounce(nil, availableChange(false)),
		AppendAnnounce(nil, availableChange(true)),
		AppendAnnounce(nil, registry.Change{Kind: registry.Withdrawn, Binding: registry.Binding{Address: registry.Address{Process: 9, ID: 3}}}),
		AppendAnnounce(nil, registry.Change{Kind: registry.Withdrawn, Process: true, Binding: registry.Binding{Address: registry.Address{Process: 9}}}),
		AppendGroup(nil, registry.Change{Kind: registry.Joined, Group: "g", Binding: registry.Binding{Address: registry.Address{Process: 9, ID: 3}}}),
		AppendGroup(nil, registry.Change{Kind: registry.Left, Group: "g", Binding: registry.Binding{Address: registry.Address{Process: 9, ID: 3}}}),
		AppendEnvelope(nil, sampleEnvelope()),
		AppendEnvelope(nil, &registry.Envelope{Kind: registry.KindReport, To: registry.Address{Process: 1, ID: 1}, From: registry.Address{Process: 2, ID: 3}, Subject: "rep.next", Pattern: "rep.next", ContentType: "text/plain", Data: []byte("x")}),
		AppendEnvelope(nil, &registry.Envelope{Kind: registry.KindRequest, To: registry.Address{Process: 1, ID: 1}, From: registry.Address{Process: 2}, Conv: 5, Subject: "multiply", ContentType: "application/cbor", Data: []byte{0x82, 6, 7}}),
		AppendPing(nil, FramePing, 12345),
		AppendPing(nil, FramePong, 0),
		AppendSynced(nil),
	}
}

// seedBodies returns the bodies of the seed frames of one kind.
func seedBodies(kind FrameKind) [][]byte {
	var out [][]byte
	for _, f := range seedFrames() {
		k, body, n, err := splitFrame(f, DefaultMaxFrame)
		if err == nil && n == len(f) && k == kind {
			out = append(out, body)
		}
	}
	return out
}

func FuzzSplitFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(fr, uint32(DefaultMaxFrame))
		f.Add(fr[:len(fr)/2], uint32(16))
	}
	f.Add([]byte{0}, uint32(100))
	f.Add(binary.AppendUvarint(nil, 1<<40), uint32(DefaultMaxFrame))
	f.Add(bytes.Repeat([]byte{0xff}, 12), uint32(DefaultMaxFrame))
	f.Fuzz(func(t *testing.T, b []byte, max32 uint32) {
		max := int(max32%(1<<20)) + 1
		kind, body, n, err := splitFrame(b, max)
		if err != nil {
			if n != 0 || body != nil {
				t.Fatalf("error %v with n %d and %d body bytes", err, n, len(body))
			}
			return
		}
		if n == 0 {
			// More is needed: never for a buffer holding a whole frame.
			if l, ln := binary.Uvarint(b); ln > 0 && l > 0 && l <= uint64(max) && uint64(len(b)) >= uint64(ln)+l {
				t.Fatalf("asked for more with a whole frame of %d bytes in %d", l, len(b))
			}
			return
		}
		if n > len(b) || len(body) > max || len(body) >= n {
			t.Fatalf("n %d, body %d of %d input bytes (max %d)", n, len(body), len(b), max)
		}
		// The frame re-encodes to the same bytes when its length prefix
		// was minimal, and always splits back to the same frame.
		again := append(appendHeader(nil, kind, len(body)), body...)
		k2, body2, n2, err := splitFrame(again, max)
		if err != nil || n2 != len(again) || k2 != kind || !bytes.Equal(body2, body) {
			t.Fatalf("re-encoded frame splits to %v %x %d %v", k2, body2, n2, err)
		}
		if len(again) == n && !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded frame %x differs from %x", again, b[:n])
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, b := range seedBodies(FrameEnvelope) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(registry.KindReport)})
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEnvelope(body, internTable{})
		kind, _, to, from, ok := envelopeRoute(body)
		if err != nil {
			return
		}
		if !ok || kind != e.Kind || to != e.To || from != e.From.Process {
			t.Fatalf("envelopeRoute = %v %v %v %v, the envelope decoded as %+v", kind, to, from, ok, e)
		}
		frame := AppendEnvelope(nil, e)
		if len(frame) != EnvelopeSize(e) {
			t.Fatalf("EnvelopeSize %d, frame %d", EnvelopeSize(e), len(frame))
		}
		_, body2, n, err := splitFrame(frame, 1<<30)
		if err != nil || n != len(frame) {
			t.Fatalf("re-encoded envelope does not split: %d, %v", n, err)
		}
		e2, err := DecodeEnvelope(body2, nil)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		// A deadline travels as the time left, so the copy's moves by
		// the time between the two decodes: compare it apart.
		if (e.Deadline == 0) != (e2.Deadline == 0) || abs(e2.Deadline-e.Deadline) > int64(time.Minute) {
			t.Fatalf("deadline %d came back as %d", e.Deadline, e2.Deadline)
		}
		e2.Deadline = e.Deadline
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", e2, e)
		}
	})
}

func abs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

func FuzzDecodeHello(f *testing.F) {
	for _, b := range seedBodies(FrameHello) {
		f.Add(b)
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("NSVC"))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := DecodeHello(body)
		if err != nil {
			return
		}
		if h.Process == 0 || (h.Role != registry.RoleServer && h.Role != registry.RoleClient) {
			t.Fatalf("accepted an invalid hello %+v", h)
		}
		_, body2, n, err := splitFrame(AppendHello(nil, h), 1<<30)
		if err != nil || n == 0 {
			t.Fatalf("re-encoded hello does not split: %v", err)
		}
		h2, err := DecodeHello(body2)
		if err != nil || !reflect.DeepEqual(h2, h) {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
	})
}

func FuzzDecodeAnnounce(f *testing.F) {
	for _, b := range seedBodies(FrameAnnounce) {
		f.Add(b)
	}
	f.Add([]byte{announceAvailable, flagProcess})
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeAnnounce(body)
		if err != nil {
			return
		}
		if c.Binding.Address.Process == 0 || (c.Kind != registry.Available && c.Kind != registry.Withdrawn) {
			t.Fatalf("accepted an invalid announcement %+v", c)
		}
		if len(c.Binding.Groups) > maxGroups {
			t.Fatalf("%d groups decoded", len(c.Binding.Groups))
		}
		_, body2, n, err := splitFrame(AppendAnnounce(nil, c), 1<<30)
		if err != nil || n == 0 {
			t.Fatalf("re-encoded announcement does not split: %v", err)
		}
		c2, err := DecodeAnnounce(body2)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %+v, %v; want %+v", c2, err, c)
		}
	})
}

// FuzzDecodeFrame checks the decoder services use on envelopes handed
// over still encoded against DecodeEnvelope: whatever the latter reads,
// the former reads the same; and the link's check before handing them
// over accepts exactly what that decoder accepts.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		if k, _, _, err := splitFrame(fr, DefaultMaxFrame); err == nil && k == FrameEnvelope {
			f.Add(fr)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got registry.Envelope
		rest, ferr := DecodeFrame(b, &got)
		kind, body, n, err := splitFrame(b, len(b))
		if err != nil || n == 0 || kind != FrameEnvelope {
			if ferr == nil {
				t.Fatalf("DecodeFrame read %+v from a buffer without a whole envelope frame", got)
			}
			return
		}
		if cerr := checkEnvelope(body); (cerr == nil) != (ferr == nil) {
			t.Fatalf("checkEnvelope says %v, DecodeFrame %v", cerr, ferr)
		}
		want, err := DecodeEnvelope(body, nil)
		if err != nil {
			return
		}
		// Each decode counts a deadline from its own now.
		if ferr == nil && abs(got.Deadline-want.Deadline) < int64(time.Minute) {
			got.Deadline = want.Deadline
		}
		if ferr != nil || !reflect.DeepEqual(&got, want) || len(rest) != len(b)-n {
			t.Fatalf("DecodeEnvelope gives %+v, DecodeFrame %+v (%d left), %v", *want, got, len(rest), ferr)
		}
	})
}

// FuzzHandshakeFrames checks the reader of the handshake's frames on
// whatever a peer may send first: it never panics, refuses what is not a
// hello or a reject at the first byte that tells, and never reads a byte
// past the frame it returns (the link's reader takes over there).
func FuzzHandshakeFrames(f *testing.F) {
	f.Add([]byte{}, "node")
	f.Add(AppendHello(nil, sampleHello()), "n")
	f.Add(AppendReason(nil, FrameReject, "TLS required"), "")
	f.Add([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), "tls") // a TLS ClientHello
	f.Add([]byte("GET / HTTP/1.1\r\n"), "")
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"), "")
	f.Add(bytes.Repeat([]byte{0x80}, 12), "")
	f.Fuzz(func(t *testing.T, b []byte, node string) {
		r := bytes.NewReader(b)
		src := &frameSource{r: r}
		kind, _, err := src.next()
		if err == nil {
			if kind != FrameHello && kind != FrameReject {
				t.Fatalf("first frame of kind %v accepted", kind)
			}
			if _, _, n, serr := splitFrame(b, maxHello); serr != nil || n != len(b)-r.Len() {
				t.Fatalf("read %d bytes for a frame of %d (%v)", len(b)-r.Len(), n, serr)
			}
		}
		h := sampleHello()
		h.Node = node
		hello := AppendHello(nil, h)
		if len(hello) > maxHello {
			return
		}
		r = bytes.NewReader(append(hello, b...))
		src = &frameSource{r: r}
		kind, body, err := src.next()
		if err != nil || kind != FrameHello {
			t.Fatalf("a hello from %q followed by %q: %v %v", node, b, kind, err)
		}
		if r.Len() != len(b) {
			t.Fatalf("read %d bytes past the hello", len(b)-r.Len())
		}
		if got, err := DecodeHello(body); err != nil || !reflect.DeepEqual(got, h) {
			t.Fatalf("hello read back as %+v, %v", got, err)
		}
	})
}
