// Package actors is netsvc's runtime: the actors that make a process a
// node of the exchange, in packages of their own below this one. This
// page says how they fit together and what they promise; it holds no
// code.
//
//	node        the composition root: a program embeds one to be a server or a client process
//	registry    the kernel: bindings, routing, envelopes, pending calls, the service mailbox
//	exchange    one exchange group's links: accepting, dialling, the duplicate rule, filters
//	connection  one link: the wire codec, the handshake, the reader, the outbound queue
//	console     the debug console: web page, JSON API, HTTP gateway, metrics
//
// Package service, beside this tree, is what a service author reads; it
// runs services on the kernel.
//
// # Control plane and data plane
//
// Actors run the control plane: a node's lifecycle, the registry's
// order of changes, who owns a link, and one handler at a time per
// service. Envelopes — requests, replies, reports, messages — do not
// travel through actors on their way, except the last one. A service
// that sends calls into the kernel, which looks the target up in an index
// read under a lock (no actor hop) and either posts the envelope to a
// local service's mailbox or encodes it straight into the outbound queue
// of the link toward its process. A writer goroutine per link swaps that
// queue out and writes it with one system call, so a busy link batches
// many frames per write; an idle one is written inline by the sender. A
// reader goroutine per link splits frames, checks them and routes them:
// on to another link as bytes, unchanged, when this process relays; to
// a local service's mailbox in one encoded batch per run of frames, which
// the service decodes one by one into a reused envelope; or to the call
// waiting for a reply. So an envelope crosses exactly one actor mailbox:
// its target service's. This is how nats-server is built (a read loop
// that routes, an outbound buffer and a flusher), and why: an actor hop
// costs about 2.5 µs in one process and about 10 µs between two processes
// sharing two cores, and a request crossing client → server → server →
// client would take eight of them.
//
// The path of a request from a service in process C1 to one in C2, both
// clients of servers S1 and S2:
//
//	C1 service → kernel (resolve, pending call) → C1 link queue → TCP
//	  → S1 reader → S1 link queue toward S2 → TCP → S2 reader → S2 link queue toward C2 → TCP
//	  → C2 reader → the target service's mailbox → its handler
//	  → the reply, the same way back → C1 reader → the waiting call
//
// A report goes the same way, from the publisher to each subscriber's
// process, once per subscriber and matching pattern. Announcements
// (services available, withdrawn, joining groups) are control: they go
// through each process's registry actor, so every watcher sees changes
// in the order they happened.
//
// # The rules
//
// What netsvc promises, numbered as comments in these packages cite
// them ("rule 13"). They restate the OSE netsvc message exchange, with
// our own rules where OSE was vague.
//
// Audience and exchange groups.
//  1. A service with audience "*" (the default) is exported through every
//     exchange endpoint of its process.
//  2. Audience "" keeps it inside its own process.
//  3. Any other audience G exports it only through endpoints of
//     exchange group G.
//  4. Endpoints link only within one exchange group: another group's is
//     refused, with the reason on both sides.
//  5. A binding that came in through an endpoint of a group is not sent
//     back into that group (no loops); one from another group is
//     re-exported as if local: a process in two groups is a bridge.
//
// Propagation.
//  6. An announcement never goes back over the link it came on.
//  7. A server forwards what it learns from a client to all its links,
//     and what it learns from a server to its clients only (servers are
//     fully meshed); a client forwards nothing between its servers (it
//     has two only while it moves, rule 11); a process's own services
//     go to all its links.
//  8. When a link comes up, each side sends the other every binding the
//     rules above allow.
//  9. When a link goes down, what was learned through it is withdrawn
//     here and onwards; a binding reachable over two links goes with the
//     last.
//  10. One link per pair of processes per exchange group: when a second
//     one completes, the one dialled by the process with the smaller id
//     survives, on both ends.
//  11. A lost link is retried after the retry delay (±20 %), forever; a
//     dial the peer refused (token, group, TLS, version) is retried with a
//     delay doubling up to a minute; a link is up only once both sides
//     accepted it; a member the cluster sees alive again is dialled at
//     once. A client endpoint never listens nor links to a client; told
//     by a draining server to move, it links to another server first,
//     and lets the old link go once the new one is synced and no call
//     waits on the old one. The draining server's peer servers are told
//     too, and route around it; it says bye once each client that moved
//     is reachable through another server.
//
// Watches, calls and failures.
//  12. A watch of a name, an address, a group or the whole registry is
//     told of what exists first, then of each change in the order it
//     happened in its process.
//  13. A call by name prefers local services, then those fewest links
//     away; calls from one process spread round-robin over equally
//     preferred ones; a draining service is not picked. A call to a
//     group picks one member so. A target that cannot take a call fails
//     with a usage failure. A call that finds nothing while its process
//     relinks waits for the resync, at most one retry delay.
//  14. A request carries a method, arguments, a conversation id and the
//     sender's address.
//  15. It is answered by a response or a failure (code, description,
//     origin, details), possibly later ("delayed response").
//  16. The runtime's failures have stable codes: no such service, no such
//     method, bad arguments, handler error, withdrawn, link lost, timed
//     out, overloaded, payload too large, not authorised.
//  17. A request is never left hanging: withdrawal or a lost link fail
//     it at once, its deadline with "timed out". It carries the time it
//     has left; the handler's context ends when the caller gives up. A
//     request that provably reached no handler is tried once more
//     elsewhere; one that may have run, never.
//
// Reports.
//  18. A service publishes reports on subjects (words separated by
//     dots); only subscribers receive them.
//  19. A subscription names a publisher (a name, an address or a group)
//     and a subject pattern: "*" matches a word, ">" at the end one or
//     more, "price*" and "pr?ces" within a word; a report matching several
//     patterns of one subscriber arrives once per pattern.
//  20. A report published with a lifetime is kept per subject and sent
//     to each new subscriber before live ones; without one it drops the
//     kept report of its subject.
//  21. A subscriber is told when a publisher goes, and attaches to new
//     publishers of the name it subscribed to.
//  22. From one publisher to one subscriber, reports arrive in order.
//
// Delivery.
//  23. Between processes whose link stays up nothing is lost or
//     reordered.
//  24. When a link breaks, what was queued on it is failed back
//     (requests) or counted as dropped (reports).
//  25. Queues are bounded, on links and in front of each service:
//     reports drop oldest first, so a subscriber that recovers has the
//     latest state, and drops are counted where operators look.
//  26. Bad input on a link closes that link with a logged reason; the
//     process and its other links go on.
//
// More of the service API.
//  27. A service may start hidden and announce itself later.
//  28. A publisher is told of subscribers coming and going.
//  29. A publisher may send a report to one subscriber only.
//  30. A publisher can expire kept reports by pattern and age.
//  31. A caller can cancel one request or all; a late answer is dropped.
//  32. Services can send one-way messages, handled per sender and id.
//  33. A server can decide per remote host whether to accept a
//     connection.
//  34. Failure details say what went wrong (counts, names).
//
// Trust and limits.
//  35. No secret crosses the wire: a token is proven over fresh nonces
//     from both sides, never sent; two tokens at once rotate one.
//  36. Every resource a peer can grow is bounded, per link and per node,
//     and a breach refuses or closes just that link or request, logged
//     and counted — except that a link between two servers is kept and
//     only its further announcements are refused. Label values in metrics
//     come from this node only.
//  37. Payloads up to the configured limit cross every link; over it is
//     "payload too large", never "overloaded".
//  38. Audience "" holds through the HTTP gateway too. Audience is
//     visibility, not access control: who may be a peer at all is decided
//     by the token and TLS.
package actors
