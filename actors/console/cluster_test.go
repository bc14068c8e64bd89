package console

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/netsvc-go/netsvc/service"
)

type testMember struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Meta  struct {
		Node     string `json:"node"`
		Exchange string `json:"exchange"`
		Console  string `json:"console"`
		Version  string `json:"version"`
	} `json:"meta"`
	RTTMillis float64 `json:"rtt_ms,omitempty"`
}

// TestBrowserCluster: one console shows three nodes' services and
// trees, read server-side from the others' consoles (with the token in
// a header), and the members as a readable table; at 1280 and 1920 px no
// table is clipped.
func TestBrowserCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	ctx := startBrowser(t)
	const token = "cluster-token"
	var consoles [3]*Console
	var members []testMember
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		n, err := startTestNode(name, service.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Stop(context.Background()) })
		if _, err := n.Runtime().Start(context.Background(), "svc-"+name, service.SetupFunc(func(*service.Agent) error { return nil })); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Node: n, Token: token}
		if i == 0 {
			cfg.Members = func() any { return members }
		}
		consoles[i] = startConsole(t, cfg)
	}
	for i, c := range consoles {
		var m testMember
		m.Name, m.State = fmt.Sprintf("n%d#boot", i+1), "alive"
		m.Meta.Node, m.Meta.Console, m.Meta.Exchange, m.Meta.Version = fmt.Sprintf("n%d", i+1), c.Addr(), "127.0.0.1:1111"+fmt.Sprint(i), "test"
		m.RTTMillis = 0.25
		members = append(members, m)
	}

	browse(t, ctx, "load the page", chromedp.Navigate(consoles[0].URL()+"?token="+token))
	browse(t, ctx, "the cluster and its members",
		chromedp.WaitVisible(chromedp.CSS(`#cluster tr[data-node="n3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-member="n2"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#cluster-nodes details[data-node="n2"]')?.textContent.includes("svc-n2")`,
			chromedp.WithPollingTimeout(10*time.Second)),
	)
	for _, n := range []string{"n1", "n2", "n3"} {
		row := eval[string](t, ctx, `document.querySelector('#cluster tr[data-node="`+n+`"]').textContent`)
		if !strings.Contains(row, "alive") || strings.Contains(row, "console answered") {
			t.Errorf("cluster row of %s: %q", n, row)
		}
	}
	member := eval[string](t, ctx, `document.querySelector('#members tr[data-member="n3"]').textContent`)
	for _, want := range []string{"n3", "alive", "127.0.0.1:11112", "0.25 ms", consoles[2].Addr()} {
		if !strings.Contains(member, want) {
			t.Errorf("member row lacks %q: %q", want, member)
		}
	}
	if strings.Contains(member, "{") {
		t.Errorf("member row shows raw JSON: %q", member)
	}
	// A click on a header sorts: members by node, then the other way.
	browse(t, ctx, "sort members by node, descending",
		chromedp.Click(chromedp.CSS(`#members thead th:first-child`)),
		chromedp.Click(chromedp.CSS(`#members thead th:first-child`)))
	if order := eval[string](t, ctx, `[...document.querySelectorAll('#members tbody tr')].map(r => r.dataset.member).join(" ")`); order != "n3 n2 n1" {
		t.Errorf("members sorted descending by node: %q", order)
	}
	// No table wider than its card at the widths users have.
	noTableClipped(t, ctx)
}

// TestAPICluster: /api/cluster reads the members' consoles with this
// console's token, and says why one could not be read.
func TestAPICluster(t *testing.T) {
	const token = "tok"
	other, err := startTestNode("other", service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Stop(context.Background()) })
	if _, err := other.Runtime().Start(context.Background(), "svc-other", service.SetupFunc(func(*service.Agent) error { return nil })); err != nil {
		t.Fatal(err)
	}
	oc := startConsole(t, Config{Node: other, Token: token})
	self, err := startTestNode("self", service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { self.Stop(context.Background()) })
	var ms []testMember
	for _, m := range []struct{ node, console, state string }{{"other", oc.Addr(), "alive"}, {"gone", "127.0.0.1:1", "alive"},
		{"dead", "127.0.0.1:2", "dead"}, {"impostor", oc.Addr(), "alive"}} {
		var tm testMember
		tm.Name, tm.State, tm.Meta.Node, tm.Meta.Console = m.node+"#1", m.state, m.node, m.console
		ms = append(ms, tm)
	}
	c := startConsole(t, Config{Node: self, Token: token, Members: func() any { return ms }})
	var got []ClusterNode
	r := get(t, c.URL()+"api/cluster", "Authorization", "Bearer "+token)
	if r.status != 200 {
		t.Fatal(r)
	}
	r.decode(t, &got)
	by := map[string]ClusterNode{}
	for _, n := range got {
		by[n.Node] = n
	}
	if n := by["other"]; n.Error != "" || !strings.Contains(string(n.Services), `"name":"svc-other"`) || !strings.Contains(string(n.Tree), `"name":"other"`) {
		t.Errorf("other: %s %s %s", n.Error, n.Services, n.Tree)
	}
	if n := by["self"]; !n.Self || len(n.Tree) == 0 {
		t.Errorf("self: %+v", n)
	}
	if n := by["gone"]; !strings.Contains(n.Error, "its console") {
		t.Errorf("gone: %+v", n)
	}
	if n := by["dead"]; n.Error != "" || n.Tree != nil {
		t.Errorf("a dead member is not asked: %+v", n)
	}
	// A console address that answers as another node shows no one's
	// actors under the wrong name.
	if n := by["impostor"]; !strings.Contains(n.Error, `answers as node "other"`) || n.Tree != nil || n.Services != nil {
		t.Errorf("impostor: %+v", n)
	}
	// Without the token the other console would answer 401: this one
	// sent it.
	if r := get(t, oc.URL()+"api/tree"); r.status != 401 {
		t.Fatalf("the other console without a token: %d", r.status)
	}
}
