package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// GET /metrics: Prometheus metrics read from the node at scrape time,
// on a registry of the console's own (never the global one).

var (
	linkLabels = []string{"link", "peer", "group"}
	dirLabels  = []string{"link", "peer", "group", "direction"}

	descLinkMessages = prometheus.NewDesc("netsvc_link_messages_total",
		"Frames carried by a link, by direction (in: received, out: sent).", dirLabels, nil)
	descLinkBytes = prometheus.NewDesc("netsvc_link_bytes_total",
		"Bytes carried by a link, by direction (in: received, out: sent).", dirLabels, nil)
	descLinkDrops = prometheus.NewDesc("netsvc_link_drops_total",
		"Reports a link dropped because its peer was too slow (oldest first).", linkLabels, nil)
	descLinkRefused = prometheus.NewDesc("netsvc_link_refused_total",
		"Requests a link refused as overloaded because its queue was full.", linkLabels, nil)
	descLinkQueued = prometheus.NewDesc("netsvc_link_queued_bytes",
		"Bytes waiting in a link's outbound queue.", linkLabels, nil)
	descLinkUp = prometheus.NewDesc("netsvc_link_up",
		"1 when a link is active, 0 while it handshakes or closes.", linkLabels, nil)
	descLinks = prometheus.NewDesc("netsvc_links",
		"Links of an exchange group, by state.", []string{"group", "state"}, nil)
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
		"Cluster members this node knows (0 without a cluster).", nil, nil)
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
		descLinkUp, descLinks, descRequests, descFailures, descLate, descUndelivered, descBindings, descLocal,
		descProcesses, descPending, descMembers, descActors, descMailbox, descStreams, descUptime, descInfo,
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
		counter(descLinkMessages, float64(l.FramesIn), l.ID, l.RemoteNode, l.Group, "in")
		counter(descLinkMessages, float64(l.FramesOut), l.ID, l.RemoteNode, l.Group, "out")
		counter(descLinkBytes, float64(l.BytesIn), l.ID, l.RemoteNode, l.Group, "in")
		counter(descLinkBytes, float64(l.BytesOut), l.ID, l.RemoteNode, l.Group, "out")
		counter(descLinkDrops, float64(l.Dropped), l.ID, l.RemoteNode, l.Group)
		counter(descLinkRefused, float64(l.Refused), l.ID, l.RemoteNode, l.Group)
		gauge(descLinkQueued, float64(l.Queued), l.ID, l.RemoteNode, l.Group)
		up := 0.0
		if l.State == "active" {
			up = 1
		}
		gauge(descLinkUp, up, l.ID, l.RemoteNode, l.Group)
		states[groupState{l.Group, l.State}]++
	}
	for k, v := range states {
		gauge(descLinks, float64(v), k.group, k.state)
	}

	st := rt.Stats()
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
	gauge(descMembers, float64(c.memberCount()))

	actors, mailbox := map[string]int{}, map[string]int{}
	for _, a := range rt.Tree().Snapshot() {
		actors[a.Kind]++
		mailbox[a.Kind] += a.Mailbox
	}
	for k, v := range actors {
		gauge(descActors, float64(v), k)
		gauge(descMailbox, float64(mailbox[k]), k)
	}
	gauge(descStreams, float64(c.hub.streams()))
	gauge(descUptime, time.Since(rt.Started()).Seconds())
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
