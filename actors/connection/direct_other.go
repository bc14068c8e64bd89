//go:build !unix

package connection

// Where non-blocking socket writes are not available: every frame goes
// through the writer goroutine.

import "net"

// directWriter is nil where writing to a socket without blocking is not
// built (Windows): every frame then goes through the writer goroutine.
func directWriter(net.Conn) func([]byte) (int, error) { return nil }
