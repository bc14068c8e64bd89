package registry

// Process ids and service addresses.

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// ProcessID identifies one running process (one Kernel) for as long as it
// runs. It is random per start, so a restarted process is a new process:
// its services get new addresses and stale replies cannot reach them.
type ProcessID uint64

// NewProcessID returns a random, non-zero process id.
func NewProcessID() ProcessID {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("netsvc: no randomness: " + err.Error())
		}
		if id := ProcessID(binary.BigEndian.Uint64(b[:])); id != 0 {
			return id
		}
	}
}

// String returns the id as 16 hex digits.
func (p ProcessID) String() string {
	return fmt.Sprintf("%016x", uint64(p))
}

// ParseProcessID reads the form String writes.
func ParseProcessID(s string) (ProcessID, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("invalid process id %q", s)
	}
	return ProcessID(v), nil
}

// Address is the unique address of one service (or of a process's own
// endpoint, ID 0). Unlike a service name it never names two services, and
// it is the same in every process that knows the service.
type Address struct {
	Process ProcessID
	ID      uint64
}

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool { return a == Address{} }

// String returns "process/id", e.g. "9f3ab2c1d4e5f607/12".
func (a Address) String() string {
	return a.Process.String() + "/" + strconv.FormatUint(uint64(a.ID), 10)
}

// ParseAddress reads the form String writes.
func ParseAddress(s string) (Address, error) {
	p, id, ok := strings.Cut(s, "/")
	if !ok {
		return Address{}, fmt.Errorf("invalid service address %q: want PROCESS/ID", s)
	}
	pid, err := ParseProcessID(p)
	if err != nil {
		return Address{}, fmt.Errorf("invalid service address %q: %w", s, err)
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return Address{}, fmt.Errorf("invalid service address %q: bad id", s)
	}
	return Address{Process: pid, ID: n}, nil
}

// MarshalText makes an Address a JSON string.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads the form MarshalText writes.
func (a *Address) UnmarshalText(b []byte) error {
	v, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalText makes a ProcessID a JSON string.
func (p ProcessID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the form MarshalText writes, the zero id
// included (a link still in its handshake has no peer process yet).
func (p *ProcessID) UnmarshalText(b []byte) error {
	if string(b) == ProcessID(0).String() {
		*p = 0
		return nil
	}
	v, err := ParseProcessID(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
