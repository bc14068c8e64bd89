package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// GET /metrics: Prometheus metrics read from the node at scrape time,
// on a registry of the console's own (never the global one).

// Link series are labelled by peer — a server peer's node name, or
// "clients" for every client link together — and summed over the links a
// peer has had, so they survive reconnects; label values never come from
// what a stranger may send at will (rule 36).
var (
	peerLabels = []string{"peer", "group"}
	dirLabels  = []string{"peer", "group", "direction"}

	descLinkMessages = prometheus.NewDesc("netsvc_link_messages_total",
		"Frames carried by the links to a peer, by direction (in: received, out: sent).", dirLabels, nil)
	descLinkBytes = prometheus.NewDesc("netsvc_link_bytes_total",
		"Bytes carried by the links to a peer, by direction (in: received, out: sent).", dirLabels, nil)
	descLinkDrops = prometheus.NewDesc("netsvc_link_drops_total",
		"Reports dropped because the peer was too slow (oldest first), relayed ones included.", peerLabels, nil)
	descLinkRefused = prometheus.NewDesc("netsvc_link_refused_total",
		"Requests refused as overloaded because the link's queue was full.", peerLabels, nil)
	descLinkAnnRefused = prometheus.NewDesc("netsvc_link_announcements_refused_total",
		"Announcements of a server peer refused for the node's bounds (the link was kept).", peerLabels, nil)
	descLinkQueued = prometheus.NewDesc("netsvc_link_queued_bytes",
		"Bytes waiting in the outbound queues of the links to a peer.", peerLabels, nil)
	descLinkUp = prometheus.NewDesc("netsvc_link_up",
		"Active links to a peer.", peerLabels, nil)
	descRefusals = prometheus.NewDesc("netsvc_link_refusals_total",
		"Connections turned away before they were up, by reason: busy (too many in their handshake), admission, tls, token, group, protocol, other.",
		[]string{"group", "reason"}, nil)
	descBudget = prometheus.NewDesc("netsvc_node_budget_used",
		"What the node holds against its limits: incomplete_bytes (frames still arriving), queued_bytes (outbound), bindings (remote), handshaking (connections).",
		[]string{"resource"}, nil)
	descBudgetLimit = prometheus.NewDesc("netsvc_node_budget_limit",
		"The node's limits, by resource (see netsvc_node_budget_used).", []string{"resource"}, nil)
	descLinks = prometheus.NewDesc("netsvc_links",
		"Links of an exchange group, by state.", []string{"group", "state"}, nil)
	descServiceDropped = prometheus.NewDesc("netsvc_service_dropped_total",
		"Reports and one-way messages a service of this process had no room for (oldest first), by service name.", []string{"service"}, nil)
	descServiceRefused = prometheus.NewDesc("netsvc_service_refused_total",
		"Requests a service of this process refused as overloaded (queue or delayed-request bounds), by service name.", []string{"service"}, nil)
	descServiceQueued = prometheus.NewDesc("netsvc_service_queued_bytes",
		"Bytes waiting for the services of this process, by service name.", []string{"service"}, nil)
	descServiceBusy = prometheus.NewDesc("netsvc_service_busy_seconds",
		"How long the longest-running handler of a service has run, once past the slow-handler threshold (0 otherwise), by service name.", []string{"service"}, nil)
	descServicesStuck = prometheus.NewDesc("netsvc_services_stuck",
		"Services whose current handler has run past the slow-handler threshold.", nil, nil)
	descSubscriptions = prometheus.NewDesc("netsvc_remote_subscriptions",
		"Subscription patterns this process's publishers hold for other processes.", nil, nil)
	descSubsRefused = prometheus.NewDesc("netsvc_remote_subscriptions_refused_total",
		"Subscriptions from other processes ignored for the node's bounds.", nil, nil)
	descDelayed = prometheus.NewDesc("netsvc_delayed_requests",
		"Requests services delayed and have not answered yet.", nil, nil)
	descRequests = prometheus.NewDesc("netsvc_requests_total",
		"Requests this process sent.", nil, nil)
	descFailures = prometheus.NewDesc("netsvc_failures_total",
		"Failures this process produced or received, by failure code.", []string{"code", "description"}, nil)
	descLate = prometheus.NewDesc("netsvc_late_replies_total",
		"Answers that arrived after their caller gave up.", nil, nil)
	descUndelivered = prometheus.NewDesc("netsvc_undelivered_total",
		"Envelopes that had nowhere to go.", nil, nil)
	descBindings = prometheus.NewDesc("netsvc_registry_bindings",
		"Bindings the registry holds (visible services, local and remote).", nil, nil)
	descLocal = prometheus.NewDesc("netsvc_local_services",
		"Services of this process, hidden ones included.", nil, nil)
	descProcesses = prometheus.NewDesc("netsvc_reachable_processes",
		"Other processes this one can reach.", nil, nil)
	descPending = prometheus.NewDesc("netsvc_pending_requests",
		"Requests waiting for their answers.", nil, nil)
	descMembers = prometheus.NewDesc("netsvc_members",
		"Cluster members this node knows, by state: alive, dead (failed, being reconnected), left (0 without a cluster).", []string{"state"}, nil)
	descCalls = prometheus.NewDesc("netsvc_service_calls_total",
		"Requests the services of this process served, failed ones included, by service and method.", []string{"service", "method"}, nil)
	descCallFailures = prometheus.NewDesc("netsvc_service_call_failures_total",
		"Requests the services of this process answered with a failure, by service, method and failure code.", []string{"service", "method", "code"}, nil)
	descCallSeconds = prometheus.NewDesc("netsvc_service_call_seconds",
		"How long the handlers of the services of this process ran, by service and method.", []string{"service", "method"}, nil)
	descActors = prometheus.NewDesc("netsvc_actors",
		"Live actors in the tree, by kind.", []string{"kind"}, nil)
	descMailbox = prometheus.NewDesc("netsvc_mailbox_messages",
		"Messages waiting in the mailboxes of the actors of a kind.", []string{"kind"}, nil)
	descStreams = prometheus.NewDesc("netsvc_console_event_streams",
		"Open event streams (GET /api/events) of the console.", nil, nil)
	descUptime = prometheus.NewDesc("netsvc_uptime_seconds",
		"Seconds since the node's runtime started.", nil, nil)
	descInfo = prometheus.NewDesc("netsvc_node_info",
		"The node's name, process id and version (the value is 1).", []string{"node", "process", "version"}, nil)
	descGatewayRejected = prometheus.NewDesc("netsvc_gateway_rejected_total",
		"Gateway requests the console refused itself, by reason: busy (too many calls running), too_large, bad_arguments, local_only (a service of audience \"\").",
		[]string{"reason"}, nil)
	descAuthFailures = prometheus.NewDesc("netsvc_console_auth_failures_total",
		"Requests to the console with a wrong token.", nil, nil)
)

// collector reads the node at scrape time.
type collector struct{ c *Console }

func (col collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkMessages, descLinkBytes, descLinkDrops, descLinkRefused, descLinkQueued,
		descLinkUp, descLinkAnnRefused, descRefusals, descBudget, descBudgetLimit, descLinks, descRequests, descFailures, descLate, descUndelivered, descBindings, descLocal,
		descProcesses, descPending, descMembers, descActors, descMailbox, descStreams, descUptime, descInfo,
		descServiceDropped, descServiceRefused, descServiceQueued, descServiceBusy,
		descServicesStuck, descSubscriptions, descSubsRefused, descDelayed, descCalls, descCallFailures, descCallSeconds,
		descGatewayRejected, descAuthFailures} {
		ch <- d
	}
}

func (col collector) Collect(ch chan<- prometheus.Metric) {
	c := col.c
	n := c.cfg.Node
	rt := n.Runtime()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	type groupState struct{ group, state string }
	states := map[groupState]int{}
	for _, x := range n.Exchanges() {
		states[groupState{x.Group(), "active"}] += 0 // an exchange without links shows 0
	}
	for _, l := range n.Links() {
		states[groupState{l.Group, l.State}]++
	}
	for k, v := range states {
		gauge(descLinks, float64(v), k.group, k.state)
	}
	for _, x := range n.Exchanges() {
		for _, p := range x.Peers() {
			counter(descLinkMessages, float64(p.FramesIn), p.Peer, p.Group, "in")
			counter(descLinkMessages, float64(p.FramesOut), p.Peer, p.Group, "out")
			counter(descLinkBytes, float64(p.BytesIn), p.Peer, p.Group, "in")
			counter(descLinkBytes, float64(p.BytesOut), p.Peer, p.Group, "out")
			counter(descLinkDrops, float64(p.Dropped), p.Peer, p.Group)
			counter(descLinkRefused, float64(p.Refused), p.Peer, p.Group)
			counter(descLinkAnnRefused, float64(p.AnnouncementsRefused), p.Peer, p.Group)
			gauge(descLinkQueued, float64(p.Queued), p.Peer, p.Group)
			gauge(descLinkUp, float64(p.Links), p.Peer, p.Group)
		}
		for reason, v := range x.Refusals() {
			counter(descRefusals, float64(v), x.Group(), reason)
		}
	}
	use, lim := n.Budget().Use(), n.Budget().Limits()
	for _, r := range []struct {
		name      string
		used, max float64
	}{
		{"incomplete_bytes", float64(use.Incomplete), float64(lim.Incomplete)},
		{"queued_bytes", float64(use.Queued), float64(lim.Queued)},
		{"bindings", float64(use.Bindings), float64(lim.Bindings)},
		{"handshaking", float64(use.Handshaking), float64(lim.Handshaking)},
	} {
		gauge(descBudget, r.used, r.name)
		gauge(descBudgetLimit, r.max, r.name)
	}

	st := rt.Kernel().Stats()
	counter(descRequests, float64(st.Requests))
	for code, v := range st.Failures {
		counter(descFailures, float64(v), strconv.Itoa(int(code)), code.String())
	}
	counter(descLate, float64(st.LateReplies))
	counter(descUndelivered, float64(st.Undelivered))
	gauge(descBindings, float64(st.Bindings))
	gauge(descLocal, float64(st.LocalServices))
	gauge(descProcesses, float64(st.Processes))
	gauge(descPending, float64(st.Pending))
	for state, n := range c.memberStates() {
		gauge(descMembers, float64(n), state)
	}
	gauge(descSubscriptions, float64(st.Subscriptions))
	counter(descSubsRefused, float64(st.SubscriptionsRefused))
	gauge(descDelayed, float64(st.Delayed))
	// Per service name (several services may share one; their figures
	// add up): a label value of this process's own.
	type perName struct {
		dropped, refused uint64
		queued           int64
		busy             float64
	}
	byName := map[string]*perName{}
	stuck := 0
	for _, s := range st.Services {
		name := s.Name
		if name == "" {
			name = "anonymous"
		}
		p := byName[name]
		if p == nil {
			p = &perName{}
			byName[name] = p
		}
		p.dropped += s.Dropped
		p.refused += s.Refused
		p.queued += s.QueuedBytes
		p.busy = max(p.busy, s.BusySeconds)
		if s.Stuck {
			stuck++
		}
	}
	for name, p := range byName {
		counter(descServiceDropped, float64(p.dropped), name)
		counter(descServiceRefused, float64(p.refused), name)
		gauge(descServiceQueued, float64(p.queued), name)
		gauge(descServiceBusy, p.busy, name)
	}
	gauge(descServicesStuck, float64(stuck))
	collectMethods(ch, st.Services)

	actors, mailbox := map[string]int{}, map[string]int{}
	for _, a := range rt.Kernel().Tree().Snapshot() {
		actors[a.Kind]++
		mailbox[a.Kind] += a.Mailbox
	}
	for k, v := range actors {
		gauge(descActors, float64(v), k)
		gauge(descMailbox, float64(mailbox[k]), k)
	}
	gauge(descStreams, float64(c.hub.streams()))
	gauge(descUptime, time.Since(rt.Kernel().Started()).Seconds())
	gauge(descInfo, 1, rt.Node(), rt.ProcessID().String(), buildVersion())
	for why, reason := range rejectReasons {
		counter(descGatewayRejected, float64(c.rejected[why].Load()), reason)
	}
	counter(descAuthFailures, float64(c.guard.failures.Load()))
}

// metricsHandler serves the console's registry: the node's metrics and
// the Go runtime's and process's.
func (c *Console) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{c},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{c},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// slogPrinter passes promhttp's errors to the console's log.
type slogPrinter struct{ c *Console }

func (p slogPrinter) Println(v ...any) { p.c.log.Warn("metrics", "error", v) }

// collectMethods adds what each method of each service served, summed
// over the services that share a name.
func collectMethods(ch chan<- prometheus.Metric, services []registry.ServiceStats) {
	type key struct{ service, method string }
	type sum struct {
		calls   uint64
		seconds float64
		buckets []uint64
		failed  map[registry.Code]uint64
	}
	sums := map[key]*sum{}
	for _, s := range services {
		name := registry.DisplayName(s.Name)
		for _, m := range s.Methods {
			k := key{name, m.Method}
			t := sums[k]
			if t == nil {
				t = &sum{buckets: make([]uint64, len(m.Buckets)), failed: map[registry.Code]uint64{}}
				sums[k] = t
			}
			t.calls += m.Calls
			t.seconds += m.Seconds
			for i, b := range m.Buckets {
				t.buckets[i] += b
			}
			for code, n := range m.Failures {
				t.failed[code] += n
			}
		}
	}
	for k, t := range sums {
		ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(t.calls), k.service, k.method)
		for code, n := range t.failed {
			ch <- prometheus.MustNewConstMetric(descCallFailures, prometheus.CounterValue, float64(n), k.service, k.method, strconv.Itoa(int(code)))
		}
		cumulative := map[float64]uint64{}
		var acc uint64
		for i, bound := range registry.LatencyBuckets {
			acc += t.buckets[i]
			cumulative[bound] = acc
		}
		ch <- prometheus.MustNewConstHistogram(descCallSeconds, t.calls, t.seconds, cumulative, k.service, k.method)
	}
}
