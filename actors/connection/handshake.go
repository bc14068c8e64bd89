package connection

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// The handshake (rule 35). No frame depends on a secret before the
// peer is accepted, and a token is proven, never sent:
//
//	dialler                                   accepter
//	hello{nonce D}                      →
//	                                    ←     hello{nonce A}     (after checking D's hello)
//	proof{HMAC(token, D's view)}        →
//	                                    ←     proof{HMAC(token, A's view)}  (after checking D's proof)
//	accept                              →
//
// Each proof covers both nonces, both process ids, the exchange group
// and which side made it, so it cannot be replayed on another link nor
// reflected back. Without a token the proofs are empty. A side that
// finds the other wanting answers reject{reason} and closes. The dialler
// is up once it has checked the accepter's proof (which the accepter
// sends only after accepting the dialler); the accepter once the
// dialler's accept arrives: so a link one side refused is never up on
// either.

// HandshakeConfig is one side of a handshake.
type HandshakeConfig struct {
	// Local is this side's hello; its Nonce is filled in.
	Local Hello
	// Dialer is set on the side that dialled.
	Dialer bool
	// Tokens are the shared secrets: this side proves itself with the
	// first and accepts a peer that proves any of them (two at once let
	// a token be rotated without an outage). None: no token is asked for
	// nor proven.
	Tokens []string
	// Check validates the peer's hello once decoded (group, role); its
	// error rejects the peer with that reason. Nil accepts any.
	Check func(Hello) error
	// Timeout bounds the whole handshake (5 s when zero).
	Timeout time.Duration
}

// Handshake runs one side of the handshake on a fresh connection and
// returns the peer's hello. It reads exactly the handshake's frames, so
// what the peer sends next (announcements, envelopes) is still unread.
// A refusal by either side is an error naming the reason; the refused
// side has been told it. It is what a link does first, exported for
// tests and tools that speak the wire by hand.
func Handshake(nc net.Conn, cfg HandshakeConfig) (Hello, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	nc.SetDeadline(time.Now().Add(cfg.Timeout))
	defer nc.SetDeadline(time.Time{})
	send := func(frame []byte) error {
		_, err := nc.Write(frame)
		return err
	}
	peer, err := handshake(send, &frameSource{r: nc}, cfg)
	return peer, timeoutReason(err, cfg.Timeout)
}

// Handshake errors: errRejected when the peer refused this side (it sent
// a reject), errRefused when this side refused the peer. Either way the
// two do not fit until someone changes a configuration.
var (
	errRejected   = errors.New("rejected by peer")
	errRefused    = errors.New("refused peer")
	errLinkClosed = errors.New("link closed")
)

// IsRefusal reports whether err ended a handshake because one side
// refused the other (token, group, protocol version, TLS), rather than
// a network failure.
func IsRefusal(err error) bool { return errors.Is(err, errRejected) || errors.Is(err, errRefused) }

// handshake runs the handshake over send and src.
func handshake(send func([]byte) error, src *frameSource, cfg HandshakeConfig) (Hello, error) {
	local := cfg.Local
	if _, err := rand.Read(local.Nonce[:]); err != nil {
		return Hello{}, fmt.Errorf("handshake: no randomness: %w", err)
	}
	refuse := func(reason error) error {
		_ = send(AppendReason(nil, FrameReject, reason.Error()))
		return fmt.Errorf("%w: %w", errRefused, reason)
	}
	readPeerHello := func() (Hello, error) {
		body, err := src.expect(FrameHello)
		if errors.Is(err, errSpeaksTLS) {
			// Say why in the clear: its TLS handshake then fails at once
			// on a record that is not TLS.
			_ = send(AppendReason(nil, FrameReject, err.Error()))
		}
		if err != nil {
			return Hello{}, err
		}
		peer, err := DecodeHello(body)
		if err == nil && cfg.Check != nil {
			err = cfg.Check(peer)
		}
		if err != nil {
			return Hello{}, refuse(err)
		}
		return peer, nil
	}
	if cfg.Dialer {
		if err := send(AppendHello(nil, local)); err != nil {
			return Hello{}, err
		}
		peer, err := readPeerHello()
		if err != nil {
			return Hello{}, err
		}
		var mine []byte
		if len(cfg.Tokens) > 0 {
			mine = proof(cfg.Tokens[0], labelDialer, local, peer)
		}
		if err := send(AppendProof(nil, mine)); err != nil {
			return Hello{}, err
		}
		theirs, err := src.proof()
		if err != nil {
			return Hello{}, err
		}
		if len(cfg.Tokens) > 0 && matchProof(cfg.Tokens, labelAccepter, peer, local, theirs) < 0 {
			return Hello{}, refuse(errors.New("not authorised: the peer did not prove the token"))
		}
		if err := send(AppendAccept(nil)); err != nil {
			return Hello{}, err
		}
		return peer, nil
	}
	peer, err := readPeerHello()
	if err != nil {
		return Hello{}, err
	}
	if err := send(AppendHello(nil, local)); err != nil {
		return Hello{}, err
	}
	theirs, err := src.proof()
	if err != nil {
		return Hello{}, err
	}
	var mine []byte
	if len(cfg.Tokens) > 0 {
		i := matchProof(cfg.Tokens, labelDialer, peer, local, theirs)
		if i < 0 {
			return Hello{}, refuse(errors.New("not authorised: wrong or missing token"))
		}
		mine = proof(cfg.Tokens[i], labelAccepter, local, peer)
	}
	if err := send(AppendProof(nil, mine)); err != nil {
		return Hello{}, err
	}
	if _, err := src.expect(FrameAccept); err != nil {
		return Hello{}, err
	}
	return peer, nil
}

// Proof labels: which side made a proof, so one cannot be reflected.
const (
	labelDialer   = "netsvc/2 dialler proof"
	labelAccepter = "netsvc/2 accepter proof"
)

// proof is HMAC-SHA256 over the maker's and the other side's nonce,
// process id and the exchange group.
func proof(token, label string, maker, other Hello) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(maker.Nonce[:])
	m.Write(other.Nonce[:])
	var ids [16]byte
	binary.BigEndian.PutUint64(ids[:8], uint64(maker.Process))
	binary.BigEndian.PutUint64(ids[8:], uint64(other.Process))
	m.Write(ids[:])
	m.Write([]byte(maker.Group))
	return m.Sum(nil)
}

// matchProof returns the index of the token got proves, or -1. Every
// token is tried, in constant time each.
func matchProof(tokens []string, label string, maker, other Hello, got []byte) int {
	found := -1
	for i, t := range tokens {
		if hmac.Equal(proof(t, label, maker, other), got) && found < 0 {
			found = i
		}
	}
	return found
}

// A TLS client starts with a handshake record: type 22, version 3.x.
const tlsHandshakeRecord = 22

var errSpeaksTLS = errors.New("not a netsvc peer in the clear: it speaks TLS, and this endpoint has TLS off")

// frameSource reads the handshake's frames one at a time, never a byte
// beyond them: the link's reader takes over the stream where it ends.
type frameSource struct {
	r     io.Reader
	first bool // the first frame has been looked at
	one   [1]byte
}

// next reads one frame, at most maxHello bytes long.
func (s *frameSource) next() (FrameKind, []byte, error) {
	var head [binary.MaxVarintLen64]byte
	n := 0
	var kindRead bool // the byte after a one-byte length was read already
	for {
		if _, err := io.ReadFull(s.r, s.one[:]); err != nil {
			return 0, nil, err
		}
		head[n] = s.one[0]
		n++
		if !s.first && n == 1 && head[0] == tlsHandshakeRecord {
			// Most likely a TLS client hello; the next byte tells. If
			// not, it is the frame's kind: the length ended at the first
			// byte (tlsHandshakeRecord is under 0x80).
			if _, err := io.ReadFull(s.r, s.one[:]); err != nil {
				return 0, nil, err
			}
			if s.one[0] == 3 {
				return 0, nil, errSpeaksTLS
			}
			kindRead = true
			break
		}
		if head[n-1] < 0x80 {
			break
		}
		if n == len(head) {
			return 0, nil, s.stranger(head[:n])
		}
	}
	length, _ := binary.Uvarint(head[:n])
	if length == 0 || length > maxHello {
		if !s.first {
			return 0, nil, fmt.Errorf("not a netsvc peer: its first frame would be %d bytes (it starts with %q)", length, s.more(head[:n]))
		}
		return 0, nil, fmt.Errorf("handshake frame of %d bytes: the limit is %d", length, maxHello)
	}
	frame := make([]byte, length)
	if kindRead {
		frame[0] = s.one[0]
	} else if _, err := io.ReadFull(s.r, frame[:1]); err != nil {
		return 0, nil, err
	}
	kind := FrameKind(frame[0])
	if !s.first && kind != FrameHello && kind != FrameReject {
		return 0, nil, s.stranger(append(head[:n], frame[0]))
	}
	s.first = true
	if _, err := io.ReadFull(s.r, frame[1:]); err != nil {
		return 0, nil, err
	}
	return kind, frame[1:], nil
}

// stranger is the error for a peer whose first bytes are not netsvc's.
func (s *frameSource) stranger(got []byte) error {
	return fmt.Errorf("not a netsvc peer: it starts with %q", s.more(got))
}

// more adds to the bytes read what else has arrived already (up to 16
// in all), for the log: "GET / HTTP/1.1" says more than "GE".
func (s *frameSource) more(got []byte) []byte {
	dl, ok := s.r.(interface{ SetReadDeadline(time.Time) error })
	if !ok || len(got) >= 16 {
		return got
	}
	buf := make([]byte, 16-len(got))
	dl.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	n, _ := s.r.Read(buf)
	return append(append([]byte(nil), got...), buf[:n]...)
}

// expect reads the next frame, which must be of kind want; a reject is
// the peer's refusal.
func (s *frameSource) expect(want FrameKind) ([]byte, error) {
	kind, body, err := s.next()
	if err != nil {
		return nil, err
	}
	switch kind {
	case want:
		return body, nil
	case FrameReject:
		reason, _ := DecodeReason(body)
		return nil, fmt.Errorf("%w: %s", errRejected, reason)
	}
	return nil, fmt.Errorf("handshake: expected a %s frame, got a %s frame", want, kind)
}

func (s *frameSource) proof() ([]byte, error) {
	body, err := s.expect(FrameProof)
	if err != nil {
		return nil, err
	}
	return DecodeProof(body)
}

// timeoutReason names a handshake that ran out of time; a peer that
// closed in the middle of a frame closed the link all the same.
func timeoutReason(err error, d time.Duration) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("handshake not finished within %v", d)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.EOF
	}
	return err
}
