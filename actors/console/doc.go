// Package console is a node's debug console: an HTTP server with a web
// page and a JSON API that show what a running node holds — its live
// actor tree, the services it sees, its links with their traffic, the
// cluster members, subscriptions and watches — plus an HTTP gateway that
// calls services, and Prometheus metrics.
//
// It reads the node (the runtime's tree, registry, interests and stats,
// the exchanges' links); it is not on the message path and changes
// nothing but what a gateway call does.
//
// Endpoints (all answers are JSON unless said otherwise):
//
//	GET  /                    the web page (HTML, CSS and JS embedded in the binary)
//	GET  /api/node            name, process, groups, listen, console and gossip addresses, version, uptime
//	GET  /api/tree            the actor tree {name, pid, kind, messages, mailbox, since, detail, children}
//	GET  /api/services        the bindings the node sees: name, address, audience, groups, node, process, location, ...
//	GET  /api/connections     {time, links: [link status], targets: [dial targets], exchanges: [...]}
//	GET  /api/members         the cluster members (Config.Members), [] without a cluster
//	GET  /api/subscriptions   report subscriptions, publishers' subscribers and registry watches
//	GET  /api/events          server-sent events: "registry" and "link" (and what Publish sends)
//	POST /rpc/SERVICE/METHOD  the gateway: a JSON array of arguments in, the JSON result out
//	GET  /metrics             Prometheus metrics, all named netsvc_...
//
// Errors are JSON objects with an "error" sentence and the HTTP status;
// the gateway's also carry the failure's code, description, origin and
// details.
//
// The gateway bounds what a call costs. The body is read as a stream and
// transcoded straight into the CBOR argument array (no generic values;
// numbers keep registry.ArgsFromJSON's meaning: integral ones are
// integers, others float64), so a call holds a small multiple of its
// body; arrays and objects nest at most 64 levels deep (deeper is "bad
// arguments", 400). A body over Config.GatewayMaxBody (the runtime's
// MaxPayload by default) is "payload too large", 413. At most
// Config.GatewayMaxInFlight calls (8 by default) run at once; past that
// a call is answered 503 at once with a Retry-After header, never
// queued. The result is written as JSON from its CBOR bytes, exactly as
// registry.PayloadJSON writes it. The gateway's own refusals are counted
// in netsvc_gateway_rejected_total{reason}: busy, too_large,
// bad_arguments, local_only.
//
// The gateway speaks for HTTP clients, which are not inside the
// process: a service of
// audience "" (visible inside its own process only, rule 38) is
// answered 404 "no such service", as a name nobody has, unless
// Config.GatewayCallsLocalOnly allows it; among several services of a
// name it picks the best whose audience is not "". Audience is
// visibility, not access control: it keeps a service out of other
// processes' registries, but whoever can reach the console (or knows a
// service's address) is not stopped by it. The token is the guard.
//
// Security: the console listens on loopback unless told otherwise, and
// refuses any other address without a token. With a token every request
// must carry it, as "Authorization: Bearer TOKEN", in the console's
// cookie, or as a "token" query parameter. The page opened with
// ?token=TOKEN is answered with the cookie (HttpOnly, SameSite=Strict)
// and sent back to its URL without the token, so the token stays out of
// history, logs and Referer headers; the page's own requests carry the
// cookie. A console reading other members' consoles for the cluster view
// sends its token in the header. Without a token, requests
// must name a loopback host (against DNS rebinding), and cross-origin
// POSTs are refused (against cross-site requests to the gateway).
//
// Wrong tokens are counted per remote host (an IPv6 host by its /64):
// after a burst of 5, a host is answered 429 with Retry-After, its token
// unchecked, until its budget refills at one guess a second. They are
// logged at Warn, at most a line per host a minute with how many were
// suppressed, and counted in netsvc_console_auth_failures_total. Behind
// a reverse proxy every client is the proxy's address and shares one
// budget. A request without a token is no guess and is not counted.
//
// Numbered rules cited in comments are those of package actors.
package console
