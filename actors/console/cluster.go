package console

// GET /api/cluster: the whole cluster on one page. This console asks
// every member's console for its node, actor tree and services, server
// side, so the page needs no member's address or token of its own; the
// token goes in a header, never a URL.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// clusterFetchTimeout bounds the wait for one member's console;
// clusterFetchMax what is read of one of its answers; clusterParallel
// how many members are asked at once.
const (
	clusterFetchTimeout = 2 * time.Second
	clusterFetchMax     = 8 << 20
	clusterParallel     = 8
)

// ClusterNode is one member as /api/cluster shows it.
type ClusterNode struct {
	Node     string          `json:"node"`
	State    string          `json:"state"`
	Console  string          `json:"console,omitempty"` // HOST:PORT of its console, "" for none
	Self     bool            `json:"self,omitempty"`    // the node this console belongs to
	Error    string          `json:"error,omitempty"`   // why its console could not be read
	Info     json.RawMessage `json:"info,omitempty"`    // its /api/node
	Tree     json.RawMessage `json:"tree,omitempty"`    // its /api/tree
	Services json.RawMessage `json:"services,omitempty"`
}

// memberConsole is what the cluster view needs of a member.
type memberConsole struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"` // gossip host:port
	State string `json:"state"`
	Meta  struct {
		Node    string `json:"node"`
		Console string `json:"console"`
	} `json:"meta"`
}

func (c *Console) apiCluster(r *http.Request) (any, error) {
	members := c.memberList()
	self := c.cfg.Node.Runtime().Node()
	out := []ClusterNode{}
	seenSelf := false
	for _, m := range members {
		node := m.Meta.Node
		if node == "" {
			node = m.Name
		}
		cn := ClusterNode{Node: node, State: m.State, Console: reachableConsole(m.Meta.Console, m.Addr), Self: node == self}
		seenSelf = seenSelf || cn.Self
		out = append(out, cn)
	}
	if !seenSelf {
		out = append(out, ClusterNode{Node: self, State: "alive", Self: true})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, clusterParallel)
	for i := range out {
		n := &out[i]
		switch {
		case n.Self:
			n.Info = jsonOf(c.apiNode(r))
			n.Tree = jsonOf(c.apiTree(r))
			n.Services = jsonOf(c.apiServices(r))
			continue
		case n.Console == "":
			n.Error = "no console"
			continue
		case n.State != "alive":
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(r.Context(), clusterFetchTimeout)
			defer cancel()
			for _, part := range []struct {
				path string
				into *json.RawMessage
			}{{"/api/node", &n.Info}, {"/api/tree", &n.Tree}, {"/api/services", &n.Services}} {
				b, err := c.fetchMember(ctx, n.Console, part.path)
				if err != nil {
					n.Error = err.Error()
					return
				}
				*part.into = b
				if part.path == "/api/node" {
					// A console address can name another node (a default
					// loopback address seen from elsewhere): never show
					// one node's actors under another's name.
					var info struct {
						Name string `json:"name"`
					}
					if json.Unmarshal(b, &info) != nil || info.Name != n.Node {
						n.Info, n.Error = nil, fmt.Sprintf("its console address %s answers as node %q", n.Console, info.Name)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// fetchMember GETs path from a member's console with this console's
// token (the cluster's consoles share one), bounded in time and size.
func (c *Console) fetchMember(ctx context.Context, addr, path string) (json.RawMessage, error) {
	scheme := "http"
	if c.cfg.TLS != nil {
		scheme = "https" // a cluster's consoles serve TLS alike
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	// The token goes only where no one on the way reads it: over TLS, or
	// to a console on this host. Any member of the gossip cluster can name
	// a console address.
	if c.cfg.Token != "" && (scheme == "https" || loopbackAddr(addr)) {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.memberClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("its console: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, clusterFetchMax))
	if err != nil {
		return nil, fmt.Errorf("its console: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("its console answered %s", resp.Status)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("its console's %s is not JSON", path)
	}
	return b, nil
}

// jsonOf is an API handler's answer as JSON; nil when it has none.
func jsonOf(v any, err error) json.RawMessage {
	if err != nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// reachableConsole is a member's console address as another host reaches
// it: a console bound to every interface is at the member's gossip host.
func reachableConsole(console, gossip string) string {
	host, port, err := net.SplitHostPort(console)
	if err != nil {
		return console
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if gh, _, err := net.SplitHostPort(gossip); err == nil && gh != "" {
			return net.JoinHostPort(gh, port)
		}
	}
	return console
}

// loopbackAddr reports whether HOST:PORT names this host.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return loopbackHost(host)
}
