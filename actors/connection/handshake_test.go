package connection

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (dialled, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

func sideConfig(role registry.Role, dialer bool, tokens ...string) HandshakeConfig {
	return HandshakeConfig{
		Local:   Hello{Protocol: Protocol, Process: registry.NewProcessID(), Node: role.String(), Role: role, Group: "g"},
		Dialer:  dialer,
		Tokens:  tokens,
		Timeout: 5 * time.Second,
	}
}

type result struct {
	peer Hello
	err  error
}

// both runs a handshake between a dialler and an accepter.
func both(t *testing.T, dialler, accepter HandshakeConfig) (d, a result) {
	t.Helper()
	dc, ac := tcpPair(t)
	done := make(chan result, 1)
	go func() {
		p, err := Handshake(ac, accepter)
		if err != nil {
			ac.Close() // as a link does: the dialler is not kept waiting
		}
		done <- result{p, err}
	}()
	p, err := Handshake(dc, dialler)
	if err != nil {
		dc.Close()
	}
	d = result{p, err}
	select {
	case a = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the accepting side's handshake did not end")
	}
	return d, a
}

func TestHandshakeTokens(t *testing.T) {
	cases := []struct {
		name               string
		dialler, accepter  []string
		ok                 bool
		refusedBy, because string
	}{
		{name: "no token", ok: true},
		{name: "same token", dialler: []string{"t1"}, accepter: []string{"t1"}, ok: true},
		{name: "wrong token", dialler: []string{"t1"}, accepter: []string{"t2"}, refusedBy: "accepter", because: "wrong or missing token"},
		{name: "missing token", accepter: []string{"t1"}, refusedBy: "accepter", because: "wrong or missing token"},
		{name: "server without the token", dialler: []string{"t1"}, refusedBy: "dialler", because: "did not prove the token"},
		// Rotation: every node accepts both, then all prove with the new one.
		{name: "rotating: old prover", dialler: []string{"old"}, accepter: []string{"new", "old"}, ok: true},
		{name: "rotating: new prover", dialler: []string{"new", "old"}, accepter: []string{"new", "old"}, ok: true},
		{name: "rotating: accepter still proves with old", dialler: []string{"new", "old"}, accepter: []string{"old", "new"}, ok: true},
		{name: "rotated too soon", dialler: []string{"new", "old"}, accepter: []string{"old"}, refusedBy: "accepter", because: "wrong or missing token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dcfg := sideConfig(registry.RoleClient, true, tc.dialler...)
			acfg := sideConfig(registry.RoleServer, false, tc.accepter...)
			d, a := both(t, dcfg, acfg)
			if tc.ok {
				if d.err != nil || a.err != nil {
					t.Fatalf("handshake failed: dialler %v, accepter %v", d.err, a.err)
				}
				if d.peer.Process != acfg.Local.Process || a.peer.Process != dcfg.Local.Process {
					t.Fatalf("peers: dialler saw %v, accepter saw %v", d.peer.Process, a.peer.Process)
				}
				return
			}
			refuser, other := a, d
			if tc.refusedBy == "dialler" {
				refuser, other = d, a
			}
			if !errors.Is(refuser.err, errRefused) || !strings.Contains(refuser.err.Error(), tc.because) {
				t.Fatalf("the %s: err = %v, want a refusal because %q", tc.refusedBy, refuser.err, tc.because)
			}
			// The refused side learns why, and neither calls the link up.
			if !errors.Is(other.err, errRejected) || !strings.Contains(other.err.Error(), tc.because) {
				t.Fatalf("the other side: err = %v, want the refusal's reason %q", other.err, tc.because)
			}
			if !IsRefusal(refuser.err) || !IsRefusal(other.err) {
				t.Fatalf("IsRefusal is false for %v or %v", refuser.err, other.err)
			}
		})
	}
}

// TestHandshakeDisclosesNothing is the attack that read a node's token:
// connect and listen. A peer that sends nothing hears nothing; one that
// sends a hello gets a hello with no secret in it, and with a made-up
// proof only a refusal.
func TestHandshakeDisclosesNothing(t *testing.T) {
	const token = "the-secret-token"
	t.Run("silent peer", func(t *testing.T) {
		dc, ac := tcpPair(t)
		go Handshake(ac, sideConfig(registry.RoleServer, false, token))
		dc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := dc.Read(make([]byte, 64))
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("a silent peer read %d bytes (%v)", n, err)
		}
	})
	t.Run("peer with a guess", func(t *testing.T) {
		dc, ac := tcpPair(t)
		done := make(chan error, 1)
		go func() {
			_, err := Handshake(ac, sideConfig(registry.RoleServer, false, token))
			ac.Close()
			done <- err
		}()
		me := sideConfig(registry.RoleClient, true)
		dc.Write(AppendHello(nil, me.Local))
		dc.Write(AppendProof(nil, bytes.Repeat([]byte{1}, 32)))
		dc.SetReadDeadline(time.Now().Add(5 * time.Second))
		all, _ := io.ReadAll(dc)
		if bytes.Contains(all, []byte(token)) {
			t.Fatalf("the token crossed the wire: %q", all)
		}
		src := &frameSource{r: bytes.NewReader(all)}
		if k, body, err := src.next(); err != nil || k != FrameHello {
			t.Fatalf("first frame %v, %v; want the hello", k, err)
		} else if _, err := DecodeHello(body); err != nil {
			t.Fatal(err)
		}
		if _, err := src.expect(FrameProof); err == nil || !strings.Contains(err.Error(), "not authorised") {
			t.Fatalf("after a wrong proof: %v, want a refusal", err)
		}
		if err := <-done; !errors.Is(err, errRefused) {
			t.Fatalf("accepter: %v", err)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		// A proof seen on one link is worthless on the next: the nonces
		// differ.
		dc, ac := tcpPair(t)
		go func() {
			Handshake(ac, sideConfig(registry.RoleServer, false, token))
			ac.Close()
		}()
		me := sideConfig(registry.RoleClient, true)
		src := &frameSource{r: dc}
		dc.Write(AppendHello(nil, me.Local))
		body, err := src.expect(FrameHello)
		if err != nil {
			t.Fatal(err)
		}
		server, _ := DecodeHello(body)
		var stale Hello // the nonces of an earlier link
		stale.Process, stale.Group = server.Process, server.Group
		dc.Write(AppendProof(nil, proof(token, labelDialer, me.Local, stale)))
		if _, err := src.expect(FrameProof); err == nil || !strings.Contains(err.Error(), "wrong or missing token") {
			t.Fatalf("a replayed proof: %v, want a refusal", err)
		}
	})
}

func TestHandshakeRefusals(t *testing.T) {
	t.Run("another protocol version", func(t *testing.T) {
		dcfg := sideConfig(registry.RoleClient, true)
		dcfg.Local.Protocol = Protocol - 1
		d, a := both(t, dcfg, sideConfig(registry.RoleServer, false))
		if a.err == nil || !strings.Contains(a.err.Error(), fmt.Sprintf("peer speaks %d, this node %d", Protocol-1, Protocol)) {
			t.Fatalf("accepter: %v", a.err)
		}
		if !errors.Is(d.err, errRejected) || !strings.Contains(d.err.Error(), "protocol version mismatch") {
			t.Fatalf("dialler: %v", d.err)
		}
	})
	t.Run("check fails", func(t *testing.T) {
		acfg := sideConfig(registry.RoleServer, false)
		acfg.Check = func(h Hello) error { return errors.New("exchange group mismatch") }
		d, a := both(t, sideConfig(registry.RoleClient, true), acfg)
		if !errors.Is(a.err, errRefused) || !errors.Is(d.err, errRejected) || !strings.Contains(d.err.Error(), "group mismatch") {
			t.Fatalf("accepter %v, dialler %v", a.err, d.err)
		}
	})
	t.Run("slow peer", func(t *testing.T) {
		dc, ac := tcpPair(t)
		acfg := sideConfig(registry.RoleServer, false)
		acfg.Timeout = 100 * time.Millisecond
		dc.Write([]byte{50}) // a frame that never completes
		_, err := Handshake(ac, acfg)
		if err == nil || !strings.Contains(err.Error(), "handshake not finished within 100ms") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not a netsvc peer", func(t *testing.T) {
		for _, first := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "SSH-2.0-OpenSSH_9.6\r\n"} {
			dc, ac := tcpPair(t)
			dc.Write([]byte(first))
			_, err := Handshake(ac, sideConfig(registry.RoleServer, false))
			if err == nil || !strings.Contains(err.Error(), "not a netsvc peer") {
				t.Fatalf("%q: err = %v", first, err)
			}
		}
	})
}

// TestHandshakeLeavesTheRest checks that what a peer sends right after
// the handshake is still there for the link's reader.
func TestHandshakeLeavesTheRest(t *testing.T) {
	dc, ac := tcpPair(t)
	done := make(chan result, 1)
	go func() {
		p, err := Handshake(ac, sideConfig(registry.RoleServer, false, "k"))
		done <- result{p, err}
	}()
	if _, err := Handshake(dc, sideConfig(registry.RoleClient, true, "k")); err != nil {
		t.Fatal(err)
	}
	dc.Write(AppendSynced(nil))
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	buf := make([]byte, 16)
	ac.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := ac.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], AppendSynced(nil)) {
		t.Fatalf("after the handshake read %x, %v; want the synced frame", buf[:n], err)
	}
}
