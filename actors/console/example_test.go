package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// A node with a service and its console; the gateway calls the service.
func Example() {
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Name: "demo", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}})
	if err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	n.Runtime().Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	}))

	c, err := console.Start(console.Config{Addr: "127.0.0.1:0", Node: n})
	if err != nil {
		panic(err)
	}
	defer c.Stop(ctx)
	// The page is at c.URL(); the API beside it.
	resp, err := http.Get(c.URL() + "api/node")
	if err != nil {
		panic(err)
	}
	var info struct{ Name string }
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	fmt.Println("node:", info.Name)

	resp, err = http.Post(c.URL()+"rpc/math/multiply", "application/json", strings.NewReader("[6, 7]"))
	if err != nil {
		panic(err)
	}
	var product int
	json.NewDecoder(resp.Body).Decode(&product)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, product)

	resp, err = http.Post(c.URL()+"rpc/math/divide", "application/json", strings.NewReader("[6, 7]"))
	if err != nil {
		panic(err)
	}
	var f console.FailureBody
	json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, int(f.Code), f.Description)
	// Output:
	// node: demo
	// 200 42
	// 404 55 no such method
}

// The gateway's limits, and a service of audience "" that it does not
// call over HTTP.
func ExampleConfig_gateway() {
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Name: "demo"})
	if err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	echo := service.SetupFunc(func(a *service.Agent) error {
		a.Export("echo", func(v any) any { return v })
		return nil
	})
	n.Runtime().Start(ctx, "public", echo)
	n.Runtime().Start(ctx, "internal", echo, service.Audience("")) // this process only

	c, err := console.Start(console.Config{
		Addr:               "127.0.0.1:0",
		Node:               n,
		GatewayMaxBody:     1 << 10, // bodies over 1 KiB: 413
		GatewayMaxInFlight: 4,       // a fifth call at once: 503, Retry-After
	})
	if err != nil {
		panic(err)
	}
	defer c.Stop(ctx)
	for _, path := range []string{"rpc/public/echo", "rpc/internal/echo"} {
		resp, err := http.Post(c.URL()+path, "application/json", strings.NewReader(`["hi"]`))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	resp, err := http.Post(c.URL()+"rpc/public/echo", "application/json", strings.NewReader(`["`+strings.Repeat("x", 2<<10)+`"]`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("2 KiB:", resp.StatusCode)
	// Output:
	// rpc/public/echo 200
	// rpc/internal/echo 404
	// 2 KiB: 413
}
