// Package connection is one TCP link between two netsvc processes: the
// wire codec (frames, handshake, announcements, envelopes), the bounded
// outbound queue with its writer, the reader, and the connection actor
// that owns the socket's life.
//
// The wire is a stream of frames: a uvarint length, one kind byte, and a
// body of that length minus one. A link opens with the handshake
// (handshake.go, Handshake): hellos with fresh nonces, proofs of the
// shared token over both (the token itself never crosses), and the
// dialler's accept; a side that finds the other wanting answers a reject
// and closes. Then come announce and group frames (registry changes),
// envelope frames (service traffic), ping/pong, move (a draining server
// sends its clients elsewhere) and a closing bye.
//
// Reading and writing take no actor hop: a reader goroutine splits,
// checks and routes what arrives, within the bounds of rule 36 (Config
// for each link, Budget for the node); senders encode into a bounded
// queue a writer goroutine flushes. The connection actor owns the
// socket's life: handshake deadline, liveness, close.
//
// It is not the exchange: deciding which links to keep, what to announce
// on them and whom to dial is the exchange actor's job. Numbered rules
// cited in comments are those of package actors.
package connection
