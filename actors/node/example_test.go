package node_test

import (
	"context"
	"fmt"
	"log"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// A server process that joins a cluster and hosts a service. In
// production start from node.LANConfig, with seeds, a token and a gossip
// key, and end with n.Run(ctx): it returns on SIGINT or SIGTERM, after
// the drain.
func Example_server() {
	ctx := context.Background()
	first := startServer("orders-0") // a server of the cluster already running
	defer first.Close()

	cfg := node.TestConfig("orders-1") // loopback, free ports
	cfg.Gossip.Join = []string{first.Mesh().Cluster().LocalAddr()}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Stop(ctx)
	if _, err := n.Runtime().Start(ctx, "orders", service.SetupFunc(func(a *service.Agent) error {
		a.Export("count", func() int { return 3 })
		return nil
	})); err != nil {
		log.Fatal(err)
	}
	if err := n.WaitSynced(ctx); err != nil { // linked to orders-0
		log.Fatal(err)
	}
	fmt.Println("ready:", n.Ready() == nil)
	// Output: ready: true
}

// A client process: it links to the first of its servers that accepts
// it, and Connect returns once every service of the cluster is known.
func Example_client() {
	ctx := context.Background()
	srv := startServer("math-server") // hosts math
	defer srv.Close()

	cli, err := node.Connect(ctx, node.Config{Name: "web", Servers: []string{srv.Addr()}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Stop(ctx)
	product, err := service.CallFor[int](ctx, cli.Runtime(), service.Name("math"), "multiply", 6, 7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(product)
	// Output: 42
}

// startServer starts a server with the service math for the examples.
func startServer(name string) *node.Node {
	ctx := context.Background()
	n, err := node.Start(ctx, node.TestConfig(name))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := n.Runtime().Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	})); err != nil {
		log.Fatal(err)
	}
	return n
}
