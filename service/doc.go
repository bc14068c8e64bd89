// Package service is what a netsvc service author reads: how to write a
// service, start it, call it, publish and subscribe, and watch who comes
// and goes. Linking processes over the network is done by a node
// (package actors/node); nothing here opens a socket, and everything here
// works the same whether the other service is in this process or on
// another machine.
//
// # Services and agents
//
// A service is a value you write whose Setup registers what it does:
//
//	rt, _ := service.NewRuntime(service.Config{Node: "demo"})
//	defer rt.Close(ctx)
//	rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
//		a.Export("multiply", func(x, y int) int { return x * y })
//		return nil
//	}))
//	product, err := service.CallFor[int](ctx, rt, service.Name("math"), "multiply", 6, 7)
//
// Each running service is an actor, and the [Agent] is its handle. Every
// handler it registers — exported methods, report and watch callbacks,
// timers, the callbacks of its own requests — runs inside that actor, one
// at a time, so a service's state needs no locks. An Agent may only be used
// from inside those handlers; to hand work to a service from elsewhere,
// call one of its methods.
//
// # Names, addresses and service groups
//
// A service has a [Name], which several services may share (replicas), and
// a unique [Address] (process id and service id, both random, so neither
// can be guessed). A service may join service groups ([Groups],
// [Agent.JoinGroup]): a [Group] names the members of one, whatever their
// names. A [Target] is any of these, or [AllServices] for watches.
//
// # Audience and exchange groups
//
// Processes are linked by exchange endpoints; each endpoint belongs to an
// exchange group (the empty name by default), and endpoints link only
// within their group. A process with endpoints in two groups is a bridge.
// A service's audience ([Audience]) says where it is visible:
//
//	"*"    everywhere its process is linked to (the default)
//	""     inside its own process only
//	"G"    only through endpoints of exchange group G
//
// Audience is visibility, not access control: a process that knows an
// address can send to it. Who may be a peer at all is decided by the
// exchange's token and TLS.
//
// # Calls and failures
//
// [Runtime.Call] and [Agent.Call] wait for the answer; [Agent.Request]
// sends and runs a callback inside the service when the answer comes.
// Calling a Name picks one service of that name: local ones first, then
// those fewest links away, taking turns over the ones that rank alike, so
// calls spread over replicas; calling a [Group] picks one of its members
// the same way. A handler answers by returning (a value, an
// error, or both) or later, with [Request.Delay]. A request is never left
// hanging: every call ends with a result or a [*Failure] carrying a stable
// code — from the callee, or from the runtime:
//
//	46 no such service     nothing visible of that name or address
//	47 timed out           the caller's deadline passed
//	48 request cancelled   the caller cancelled it
//	55 no such method      the service does not export the method
//	56 bad arguments       wrong count or types (details say which)
//	57 handler error       the handler returned an error or panicked
//	58 response aborted    the service abandoned a delayed response
//	60 service withdrawn   it went away before it answered
//	61 link lost           the link the request went over went down
//	62 overloaded          a queue on the way is full
//	63 payload too large   over the configured maximum (16 MiB by default)
//	64 not authorised      a peer refused the caller
//	65 shutting down       the runtime or the calling service is stopping
//	66 bad target          the target cannot take a call (AllServices)
//
// Check them with errors.As, or errors.Is against ErrTimedOut and friends.
//
// # Deadlines, cancelling and failover
//
// A request carries the time its caller has left: the context's deadline,
// or Config.CallTimeout. The handler's context (its [*Request]) has that
// deadline and is done when it passes or the caller gives up or cancels,
// even processes away; pass it to the calls the handler makes and they
// inherit it, so a cycle of synchronous calls ends when its outermost
// caller gives up. A request whose caller gave up while it waited in the
// service's mailbox is not run.
//
// A request that provably never reached a handler — the binding was
// withdrawn (a draining node answers "withdrawn, not run"), its link
// closed before it left, the service's queue refused it — is sent once
// more by the caller's process to the next service of the name or group
// called, within the deadline. One that may have run is never sent again:
// a call runs at most once.
//
// # Panics
//
// A panic in a handler fails the request it served with code 57 and is
// logged; what happens to the service is its [PanicPolicy], chosen with
// [OnPanic]: it resumes (the default), restarts with fresh state at the
// same address, or stops.
//
// # Reports, subjects and patterns
//
// A service publishes reports on subjects, words separated by dots
// ("prices.nyse.ibm"); only subscribers receive them. A subscription names
// a publisher (a Name: every service of that name, now and later; an
// Address; or a Group) and a subject pattern: "*" matches one word, ">"
// at the end one or more, "price*" and "pr?ces" match within a word, and
// a pattern without them matches exactly. A report matching several of a
// subscriber's patterns arrives once per pattern. Reports from one
// publisher arrive in the order published. A subscriber that falls behind
// loses its oldest reports first, counted, so when it catches up it has
// the latest state.
//
// # Retained reports
//
// [Agent.PublishRetained] keeps the last report of each subject for a
// lifetime ([Forever] for no limit); every new subscriber receives the
// kept reports that match before any live one. A publisher may also be
// told of subscribers coming and going ([Agent.OnSubscription]) and send
// one of them a report of its own ([Agent.SendReport]).
//
// # Watches
//
// [Agent.Watch] (or [Runtime.Watch] from outside any service) tells of
// services of a name, an address, a group or all services becoming
// available or withdrawn (and joining or leaving groups): first those that
// exist now, then each change in the order it happened in this process.
//
// Rules cited by number in comments ("rule 13") are listed in the
// documentation of package actors, with how the runtime under this
// package is built.
package service
