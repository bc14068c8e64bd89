package service_test

import (
	"context"
	"fmt"

	"github.com/netsvc-go/netsvc/service"
)

func Example() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{Node: "example"})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, err = rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	}))
	if err != nil {
		panic(err)
	}
	product, err := service.CallFor[int](ctx, rt, service.Name("math"), "multiply", 6, 7)
	fmt.Println(product, err)
	// Output: 42 <nil>
}
