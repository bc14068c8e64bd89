package node_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// handshakeTimeout is short, so a silent connection is closed soon, but
// not so short that a loaded machine misses a good client's hello.
const handshakeTimeout = time.Second

// clientHello returns the first bytes a TLS client sends.
func clientHello(t *testing.T) []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "netsvc.test", InsecureSkipVerify: true}).Handshake()
	buf := make([]byte, 4096)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.Read(buf)
	if err != nil || n < 50 || buf[0] != 0x16 {
		t.Fatalf("no TLS ClientHello captured: %d bytes %x, %v", n, buf[:n], err)
	}
	return buf[:n]
}

// TestBadInput checks rule 26: bad input on the exchange port closes
// that connection with a logged reason, and the node goes on: a client
// linked before keeps its link and keeps calling.
func TestBadInput(t *testing.T) {
	xc := serverX("", listen(t))
	xc.Link.HandshakeTimeout = handshakeTimeout
	x := startNode(t, "x", xc)
	startMath(t, x, "math")
	good := startNode(t, "good", clientX("", x.Addr()))
	visible(t, good, "math", 1)
	linkedTo(t, good, x)
	goodLink := activeLinks(good, x.pid())[0].ID

	hello := connection.AppendHello(nil, connection.Hello{Protocol: connection.Protocol, Process: registry.NewProcessID(),
		Node: "raw", Role: registry.RoleClient})
	get := "GET / HTTP/1.1\r\nHost: " + x.Addr() + "\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
	rng := rand.New(rand.NewPCG(26, 26))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}

	const (
		atOnce    = "at once"
		byTimeout = "by the handshake timeout"
		anyTime   = ""
	)
	cases := []struct {
		name   string
		send   func(r *rawPeer)
		reason string // in the node's log for this connection ("" for any)
		when   string // when the node closes it
	}{
		{"garbage", func(r *rawPeer) { r.write([]byte{3, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff}) }, "not a netsvc peer", atOnce},
		{"random bytes", func(r *rawPeer) { r.write(garbage) }, "", anyTime},
		{"truncated frame then close", func(r *rawPeer) {
			r.write(hello[:len(hello)/2])
			r.c.(*net.TCPConn).CloseWrite()
		}, "", atOnce},
		{"absurd length", func(r *rawPeer) {
			r.write(append(binary.AppendUvarint(nil, 1<<40), byte(connection.FrameHello), 'N', 'S', 'V', 'C'))
		}, "not a netsvc peer: its first frame would be 1099511627776 bytes", atOnce},
		{"overlong length prefix", func(r *rawPeer) { r.write(bytes.Repeat([]byte{0xff}, 12)) }, "not a netsvc peer", atOnce},
		{"unknown frame kind after hello", func(r *rawPeer) {
			r.handshake(connection.Hello{})
			r.write([]byte{2, 0x7f, 0})
		}, "unexpected unknown(127) frame", atOnce},
		{"envelope before hello", func(r *rawPeer) {
			r.write(connection.AppendEnvelope(nil, &registry.Envelope{Kind: registry.KindRequest,
				To: service.Address{Process: x.pid(), ID: 1}, From: service.Address{Process: 1}, Subject: "multiply"}))
		}, "not a netsvc peer", atOnce},
		{"bad envelope after hello", func(r *rawPeer) {
			r.handshake(connection.Hello{})
			r.write([]byte{4, byte(connection.FrameEnvelope), 99, 0, 0})
		}, "envelope", atOnce},
		{"hello with bad magic", func(r *rawPeer) {
			bad := append([]byte(nil), hello...)
			bad[2] = 'X' // after the one-byte length and the kind
			r.write(bad)
		}, "bad magic", atOnce},
		{"HTTP GET", func(r *rawPeer) { r.write([]byte(get)) }, `not a netsvc peer: it starts with \"GET`, atOnce},
		{"TLS ClientHello", func(r *rawPeer) { r.write(clientHello(t)) }, "not a netsvc peer", atOnce},
		{"silent", func(*rawPeer) {}, "handshake not finished within", byTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, x.Addr())
			local := r.c.LocalAddr().String()
			tc.send(r)
			start := time.Now()
			r.readUntilClosed(handshakeTimeout + 2*time.Second)
			d := time.Since(start)
			if (tc.when == atOnce && d >= handshakeTimeout) || (tc.when == byTimeout && d < handshakeTimeout-50*time.Millisecond) {
				t.Errorf("closed after %v; want it closed %s (%v)", d, tc.when, handshakeTimeout)
			}
			// Logged, with the reason.
			nodetest.WaitFor(t, waitLong, func() error {
				lines := x.logs.lines("remote="+local, "reason=")
				for _, l := range lines {
					if strings.Contains(l, tc.reason) {
						return nil
					}
				}
				return fmt.Errorf("no log line for %s with reason %q: %q", local, tc.reason, lines)
			})
			// Gone from the node's links.
			nodetest.WaitFor(t, waitLong, func() error {
				for _, l := range x.Links() {
					if l.RemoteAddress == local {
						return fmt.Errorf("x still has the bad connection: %+v", l)
					}
				}
				return nil
			})
			// The good client is untouched.
			if ls := activeLinks(good, x.pid()); len(ls) != 1 || ls[0].ID != goodLink {
				t.Fatalf("the good client's links changed: %+v, was %s", ls, goodLink)
			}
			mustMultiply(t, good, service.Name("math"))
		})
	}
}

// TestStrayClientsRecognisedAtOnce checks what frame.go promises of
// Magic: an HTTP request or a TLS hello is recognised at once, not only
// when the handshake timeout ends, including a request shorter than the
// frame its first byte announces.
func TestStrayClientsRecognisedAtOnce(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t))) // default handshake timeout: 5 s
	for name, b := range map[string][]byte{
		"TLS ClientHello": clientHello(t),
		"long HTTP GET":   []byte("GET / HTTP/1.1\r\nHost: " + x.Addr() + "\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
		"short HTTP GET":  []byte("GET / HTTP/1.0\r\n\r\n"),
		"short HTTP POST": []byte("POST /rpc HTTP/1.0\r\n\r\n"),
		"SSH banner":      []byte("SSH-2.0-OpenSSH_9.6\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, x.Addr())
			r.write(b)
			r.readUntilClosed(time.Second)
		})
	}
}

// TestHandshakeRefusals checks the refusals of a wrong handshake: a
// hello with another protocol version, a missing or wrong proof of the
// token, get a reject frame with the reason, and a node client with a
// wrong token is refused with "not authorised" and never sees the node's
// services (rules 16, 26, 35).
func TestHandshakeRefusals(t *testing.T) {
	xc := serverX("", listen(t))
	xc.Tokens = []string{"secret"}
	x := startNode(t, "x", xc)
	startMath(t, x, "math")

	rejectReason := func(t *testing.T, h connection.Hello, tokens ...string) string {
		r := dialRaw(t, x.Addr())
		_, err := r.tryHandshake(h, tokens...)
		reason, ok := strings.CutPrefix(fmt.Sprint(err), "rejected by peer: ")
		if !ok {
			t.Fatalf("handshake: %v; want a reject frame", err)
		}
		r.readUntilClosed(2 * time.Second)
		return reason
	}
	t.Run("protocol version", func(t *testing.T) {
		if r := rejectReason(t, connection.Hello{Protocol: connection.Protocol + 1}, "secret"); !strings.Contains(r, "protocol version") {
			t.Fatalf("reject reason %q; want the protocol version mismatch", r)
		}
	})
	t.Run("missing token", func(t *testing.T) {
		if r := rejectReason(t, connection.Hello{}); !strings.Contains(r, "not authorised") {
			t.Fatalf("reject reason %q; want not authorised", r)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		if r := rejectReason(t, connection.Hello{}, "guess"); !strings.Contains(r, "not authorised") {
			t.Fatalf("reject reason %q; want not authorised", r)
		}
	})
	for _, token := range []string{"", "guess"} {
		t.Run(fmt.Sprintf("node client with token %q", token), func(t *testing.T) {
			cc := clientX("", x.Addr())
			if token != "" {
				cc.Tokens = []string{token}
			}
			c := startNode(t, "c", cc)
			nodetest.WaitFor(t, waitLong, func() error {
				ts := c.x("").Targets()
				if len(ts) != 1 || ts[0].State != "rejected" || !strings.Contains(ts[0].LastErr, "not authorised") {
					return fmt.Errorf("targets %+v; want rejected, not authorised", ts)
				}
				return nil
			})
			if l := c.rt().Lookup("math"); len(l) != 0 {
				t.Errorf("the refused client sees math: %+v", l)
			}
			for _, l := range x.Links() {
				if l.RemoteProcess == c.pid() {
					t.Errorf("x has a link to the refused client: %+v", l)
				}
			}
		})
	}
	t.Run("many at once", func(t *testing.T) {
		// Refusals racing each other and the closes that follow them:
		// every refused peer still learns why.
		const rounds, parallel = 20, 16
		refuse := func() error {
			c, err := net.DialTimeout("tcp", x.Addr(), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = connection.Handshake(c, connection.HandshakeConfig{Dialer: true, Tokens: []string{"guess"},
				Local: connection.Hello{Protocol: connection.Protocol, Process: registry.NewProcessID(), Node: "guesser", Role: registry.RoleClient}})
			if err == nil || !strings.Contains(err.Error(), "rejected by peer: not authorised") {
				return fmt.Errorf("handshake with a wrong token: %v", err)
			}
			return nil
		}
		for range rounds {
			errs := make(chan error, parallel)
			for range parallel {
				go func() { errs <- refuse() }()
			}
			for range parallel {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	t.Run("right token", func(t *testing.T) {
		cc := clientX("", x.Addr())
		cc.Tokens = []string{"secret"}
		c := startNode(t, "c", cc)
		visible(t, c, "math", 1)
		mustMultiply(t, c, service.Name("math"))
	})
}

// TestCorruptEnvelopeForService checks rule 26 for envelopes a link
// hands to a local service without decoding them first: one whose header
// routes but whose body is bad still closes the link, with a reason.
func TestCorruptEnvelopeForService(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	math := startMath(t, x, "math")
	header := func(from service.ProcessID, fromID uint64, flags byte) []byte {
		b := []byte{byte(registry.KindRequest), 0, flags}
		b = binary.BigEndian.AppendUint64(b, uint64(math.Process))
		b = binary.BigEndian.AppendUint64(b, math.ID)
		b = binary.BigEndian.AppendUint64(b, uint64(from))
		b = binary.BigEndian.AppendUint64(b, fromID)
		return append(b, 7, 0) // conversation, sequence
	}
	frame := func(body []byte) []byte {
		return append(binary.AppendUvarint(nil, uint64(len(body)+1)), append([]byte{byte(connection.FrameEnvelope)}, body...)...)
	}
	cases := map[string]func(r *rawPeer) []byte{
		"string longer than the frame": func(r *rawPeer) []byte {
			return frame(append(header(r.pid, 1, 0), 200, 'x', 'y'))
		},
		"unknown flags": func(r *rawPeer) []byte {
			return frame(append(header(r.pid, 1, 1<<6), 0, 0, 0))
		},
		"deadline cut short": func(r *rawPeer) []byte {
			return frame(append(header(r.pid, 1, 1), 0, 0))
		},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, x.Addr())
			r.handshake(connection.Hello{})
			r.announce("raw", 1)
			args, err := registry.EncodeArgs(6, 7)
			if err != nil {
				t.Fatal(err)
			}
			good := connection.AppendEnvelope(nil, &registry.Envelope{Kind: registry.KindRequest, To: math,
				From: service.Address{Process: r.pid, ID: 1}, Conv: 8, Subject: "multiply", ContentType: args.ContentType, Data: args.Data})
			r.write(append(bad(r), good...))
			r.readUntilClosed(2 * time.Second)
			nodetest.WaitFor(t, waitLong, func() error {
				if l := x.logs.lines("remote="+r.c.LocalAddr().String(), "reason="); len(l) == 0 {
					return fmt.Errorf("no reason logged for the closed link")
				}
				return nil
			})
		})
	}
}
