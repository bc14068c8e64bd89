package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

func TestCallAcrossLink(t *testing.T) {
	ctx := context.Background()
	a, err := node.Start(ctx, node.Config{Name: "a", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	if _, err := a.Runtime().Start(ctx, "math", service.SetupFunc(func(ag *service.Agent) error {
		ag.Export("multiply", func(x, y int) int { return x * y })
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	b, err := node.Start(ctx, node.Config{Name: "b", Exchanges: []exchange.Config{node.Client("", a.Addr())}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Runtime().Lookup("math")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("math never visible on b")
		}
		time.Sleep(5 * time.Millisecond)
	}
	v, err := service.CallFor[int](ctx, b.Runtime(), service.Name("math"), "multiply", 6, 7)
	if err != nil || v != 42 {
		t.Fatal(v, err)
	}
}
