// Package cluster finds the other netsvc nodes with hashicorp/memberlist
// gossip and tells its caller who is up and who went away.
//
// A node calls [Start] with its gossip address, a few seed addresses and the
// [Meta] it wants the others to know (above all its exchange TCP address).
// The package then
//
//   - joins the seeds in the background, retrying with backoff (and again
//     whenever the node finds itself alone), so nodes may start in any order;
//   - reconnects, as Serf does: it remembers the gossip address of every
//     member it saw fail (not of those that left) and of its seeds, and
//     joins them again every Config.ReconnectInterval (30 s in LAN and
//     Local, 1 s in Fast) while no live member has that address, whether
//     or not it is alone: a failed member for Config.ReconnectTimeout
//     (24 h), at most 1,024 of them; a seed for as long as it runs.
//     memberlist itself talks only to members it believes alive, so
//     without this a partition longer than failure detection, or a node
//     started without seeds and cut off, would never heal;
//   - reports every compatible member through [Events]: MemberUp when it
//     joins, comes back after being declared dead (a partition healed:
//     the same member, same name) or changes its metadata, MemberDown
//     with reason "left" (it called [Cluster.Leave]) or "dead" (the
//     failure detector gave up on it);
//   - ignores, and logs once, members of another cluster, of another wire
//     protocol version, or whose metadata it cannot decode, so gossip from a
//     foreign or newer node can never crash or confuse it;
//   - forwards memberlist's own log lines to a [log/slog] logger at their
//     level.
//
// Each start of a node is a new memberlist member named
// "<Meta.Node>#<random boot id>": a restarted node never collides with its
// previous incarnation, which is reaped as dead or left on its own.
// Clusters are isolated by memberlist's packet label "netsvc/<Meta.Cluster>"
// and, optionally, by a shared encryption key.
//
// Timings come from a [Preset]: [LAN] and [Local] are memberlist's defaults
// (a killed member is noticed after about 5–8 s); [Fast] notices it in about
// 1 s and is meant for loopback tests and demos.
//
// This package tells its user who is up; it dials nothing. The node
// (package actors/node) acts on it: its Mesh keeps a server exchange
// linked to every other server of its exchange group. Package
// clustertest cuts the gossip of a test's cluster.
//
// What it is not for: it carries no registry or service data. memberlist
// gossip is best-effort and may take a push/pull round (seconds) to
// repair a missed update, so anything that must arrive goes over the
// exchange links instead. Numbered rules cited in comments are those of
// package actors.
package cluster
