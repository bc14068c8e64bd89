// Package connection is one TCP link between two netsvc processes: the
// wire codec (frames, handshake, announcements, envelopes), the bounded
// outbound queue with its writer, the reader, and the connection actor
// that owns the socket's life.
//
// The wire is a stream of frames: a uvarint length, one kind byte, and a
// body of that length minus one. The first frame each way is a hello; a
// peer that does not fit answers with a reject and closes. Then come
// announce and group frames (registry changes), envelope frames (service
// traffic), ping/pong and a closing bye.
//
// It is not the exchange: deciding which links to keep, what to announce
// on them and whom to dial is the exchange actor's job.
package connection
