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
	State string `json:"state"`
	Meta  struct {
		Node    string `json:"node"`
		Console string `json:"console"`
	} `json:"meta"`
}

func (c *Console) apiCluster(r *http.Request) (any, error) {
	var members []memberConsole
	if b, err := json.Marshal(c.members()); err == nil {
		_ = json.Unmarshal(b, &members)
	}
	self := c.cfg.Node.Runtime().Node()
	out := []ClusterNode{}
	seenSelf := false
	for _, m := range members {
		node := m.Meta.Node
		if node == "" {
			node = m.Name
		}
		cn := ClusterNode{Node: node, State: m.State, Console: m.Meta.Console, Self: node == self}
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
			n.Info = mustJSON(c.apiNode(r))
			n.Tree = mustJSON(c.apiTree(r))
			n.Services = mustJSON(c.apiServices(r))
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	if c.cfg.Token != "" {
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

func mustJSON(v any, err error) json.RawMessage {
	if err != nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
