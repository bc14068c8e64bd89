// Package examples holds runnable netsvc programs, each a main package in
// a folder of its own: an exchange server, a math service and its caller,
// a publisher and a subscriber, a bridge between two exchange groups with
// its backend publisher, and a meshed exchange network. README.md in this
// folder says how to run each; examples_test.go builds them all and runs
// them together as separate processes (go test ./examples/).
package examples
