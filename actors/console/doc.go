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
// Security: the console listens on loopback unless told otherwise, and
// refuses any other address without a token. With a token every request
// must carry it, as "Authorization: Bearer TOKEN" or as a "token" query
// parameter (EventSource cannot set headers). Without a token, requests
// must name a loopback host (against DNS rebinding), and cross-origin
// POSTs are refused (against cross-site requests to the gateway).
package console
