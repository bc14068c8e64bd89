package connection

// Frames: the kinds, the length-prefixed layout, the protocol version
// and the field reader every decoder uses.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// FrameKind is the kind byte of a frame.
type FrameKind uint8

// Frame kinds.
const (
	FrameHello    FrameKind = 1
	FrameReject   FrameKind = 2
	FrameAnnounce FrameKind = 3
	FrameGroup    FrameKind = 4
	FrameEnvelope FrameKind = 5
	FramePing     FrameKind = 6
	FramePong     FrameKind = 7
	FrameBye      FrameKind = 8
	FrameSynced   FrameKind = 9  // ends the link-up dump: the peer has sent all it knows
	FrameProof    FrameKind = 10 // the handshake's proof of the shared token (empty without one)
	FrameAccept   FrameKind = 11 // the dialler accepted the accepting side: the link is up
	FrameMove     FrameKind = 12 // a draining server tells a client which servers to move to
)

var frameNames = [...]string{"?", "hello", "reject", "announce", "group", "envelope", "ping", "pong", "bye", "synced", "proof", "accept", "move"}

func (k FrameKind) String() string {
	if int(k) < len(frameNames) && k > 0 {
		return frameNames[k]
	}
	return fmt.Sprintf("unknown(%d)", uint8(k))
}

// Protocol is the wire protocol version in hellos. Version 2 proves the
// token instead of sending it, carries 64-bit service ids, the time a
// request has left, headers, cancels, not-run failures and moves;
// version 3 leaves a report's pattern off when it is the subject and
// codes the codec's content types in an envelope's flags.
const Protocol = 3

// Magic opens every hello, so a stray client (an HTTP request, a TLS
// hello) is recognised at once.
var Magic = [4]byte{'N', 'S', 'V', 'C'}

// DefaultMaxFrame is the largest frame accepted by default.
const DefaultMaxFrame = 16 << 20

// ErrFrameTooLarge is returned for frames over the configured maximum.
var ErrFrameTooLarge = errors.New("frame too large")

// appendHeader appends the length prefix and kind of a frame whose body
// is n bytes.
func appendHeader(b []byte, kind FrameKind, n int) []byte {
	b = binary.AppendUvarint(b, uint64(n+1))
	return append(b, byte(kind))
}

// headerLen is the size of appendHeader's output.
func headerLen(n int) int { return uvarintLen(uint64(n+1)) + 1 }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// splitFrame finds the first frame in b. It returns the frame's kind, its
// body, and the total bytes it spans; n == 0 means more bytes are needed.
// A length over max is an error: the stream cannot be trusted after it.
func splitFrame(b []byte, max int) (kind FrameKind, body []byte, n int, err error) {
	length, ln := binary.Uvarint(b)
	if ln == 0 {
		if len(b) >= binary.MaxVarintLen64 {
			return 0, nil, 0, errors.New("malformed frame length")
		}
		return 0, nil, 0, nil
	}
	if ln < 0 {
		return 0, nil, 0, errors.New("malformed frame length")
	}
	if length == 0 {
		return 0, nil, 0, errors.New("empty frame")
	}
	if length > uint64(max) {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, length, max)
	}
	total := ln + int(length)
	if len(b) < total {
		return 0, nil, 0, nil
	}
	return FrameKind(b[ln]), b[ln+1 : total], total, nil
}

// reader decodes the fields of a frame body; the first error sticks.
type reader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated frame")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(errTruncated)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(errTruncated)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a length-prefixed field, sharing the frame's memory.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errTruncated)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// fixed returns the next n bytes, sharing the frame's memory.
func (r *reader) fixed(n int) []byte {
	if r.err != nil || len(r.b) < n {
		r.fail(errTruncated)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// rest returns what is left of the body.
func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d stray bytes after the frame's fields", len(r.b)))
	}
	return r.err
}
