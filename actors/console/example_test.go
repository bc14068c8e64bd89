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
