package cluster_test

import (
	"fmt"
	"time"

	"github.com/netsvc-go/netsvc/cluster"
)

// Two exchange servers find each other: the second joins the first as its
// seed and is told the first one's exchange address.
func ExampleStart() {
	seed, err := cluster.Start(cluster.Config{
		BindAddr: "127.0.0.1:0", // a free port; read it back with LocalAddr
		Preset:   cluster.Fast,
		Meta:     cluster.Meta{Node: "xs-a", Role: cluster.RoleServer, Exchange: "127.0.0.1:11111", Protocol: 1},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seed.Shutdown()

	up := make(chan cluster.Member, 1)
	b, err := cluster.Start(cluster.Config{
		BindAddr: "127.0.0.1:0",
		Join:     []string{seed.LocalAddr()}, // retried in the background until it answers
		Preset:   cluster.Fast,
		Meta:     cluster.Meta{Node: "xs-b", Role: cluster.RoleServer, Exchange: "127.0.0.1:11112", Protocol: 1},
	}, cluster.EventFuncs{
		Up: func(m cluster.Member) {
			select { // Events methods must not block
			case up <- m:
			default:
			}
		},
		Down: func(m cluster.Member, reason string) {},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Leave(time.Second)

	select {
	case m := <-up:
		fmt.Println("xs-b sees", m.Meta.Node, "with its exchange at", m.Meta.Exchange)
	case <-time.After(5 * time.Second):
		fmt.Println("no member within 5s")
	}
	// Output: xs-b sees xs-a with its exchange at 127.0.0.1:11111
}
