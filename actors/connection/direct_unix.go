//go:build unix

package connection

// A write that never blocks, for a sender that writes inline on an idle
// link.

import (
	"net"
	"syscall"
)

// directWriter returns a write that never blocks for a plain TCP
// connection: it writes what the socket buffer takes and returns. It is
// nil for other connections (TLS must go through its own Write).
func directWriter(nc net.Conn) func([]byte) (int, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write // made once: a method value per call would allocate
	return w.writeAll
}

type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf []byte
	n   int
	err error
}

// writeAll is called by one inline sender at a time (the queue's
// writing flag), so the fields carry its arguments safely.
func (w *rawWriter) writeAll(b []byte) (int, error) {
	w.buf, w.n, w.err = b, 0, nil
	if err := w.rc.Write(w.fn); err != nil {
		return w.n, err
	}
	w.buf = nil
	return w.n, w.err
}

func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.buf) {
		n, err := syscall.Write(int(fd), w.buf[w.n:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return true // full: the writer goroutine waits instead
		}
		if err != nil {
			w.err = err
			return true
		}
		w.n += n
	}
	return true
}
