// Package registry is netsvc's kernel: one per process, under every
// service and every link. It holds the registry actor (the bindings this
// process sees, changed in one order so every watch sees that order),
// the index other goroutines read under a lock to resolve and route
// (local services first, then those fewest links away), the envelopes
// services exchange, the table of calls waiting for an answer, the
// service mailbox (bounded in bytes; reports drop oldest first) with its
// watch for handlers that run too long, and what the console reads of
// it all (Tree, Stats, Interests).
//
// Two seams plug into it: exchange.go for the links of package
// actors/exchange (import what a peer announced, deliver what it sent,
// find the link toward a process), and services.go for package service,
// which runs each service's actor on it. Service authors use package
// service, not this one. It imports nothing else of the project and
// opens no socket.
//
// The values services pass (Address, Name, Failure, Payload...) are
// defined here and named again in package service. Numbered rules cited
// in comments are those of package actors.
package registry
