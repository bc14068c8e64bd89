// Command netsvc-chaos is test tooling for netsvc, not part of the
// product: a reliability test that kills and restarts nodes under load
// and checks that every call ends.
//
// It checks the delivery and failure guarantees (every call ends, in an
// answer or a failure, within its deadline; a request is sent again only
// when it provably reached no handler) the way Orleans' ChaoticCluster
// does: server nodes run as processes of a netsvc binary ("netsvc node
// --demo"), meshed by gossip; one client per node, in this process, calls
// the math service of every other node at a steady rate with a deadline
// per call, while a killer SIGKILLs random nodes and restarts them (same
// name, same ports). At the end it checks that every call ended, in a
// response or a failure, within its deadline, and that the cluster
// settles with every service visible exactly once everywhere and one link
// per pair of servers; it prints what happened.
//
// The nodes run the netsvc binary named by --bin, or else the netsvc
// found on PATH; its "version" line must say netsvc, and the progress
// shows it. Build the one to test with
//
//	go build -o netsvc ./cmd/netsvc
//	go run ./cmd/netsvc-chaos --bin ./netsvc --duration 60s
//
// With --rolling it does a rolling restart instead: each node in turn is
// drained with SIGTERM and restarted, the clients have every server as a
// fallback and call math by name, and every call must succeed.
//
//	go run ./cmd/netsvc-chaos --bin ./netsvc --rolling --nodes 3 --duration 30s
//
// Progress goes to stderr, a line per kill and restart; the summary to
// stdout (--json for JSON). When a guarantee broke, the nodes' logs are
// kept and their directory printed.
//
// Exit status: 0 when every guarantee held, 1 when one broke (or the run
// could not be set up), 2 for a usage error (a bad flag, or no netsvc
// binary to run), one line on stderr.
//
// Run "netsvc-chaos --help" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A second interrupt while stopping kills the process the usual way.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a guarantee broke, or the run could not be set up
	exitUsage   = 2 // bad command line
)

// The demo services "netsvc node --demo" starts on every node
// (cmd/netsvc/demo.go): the load calls math, and a settled cluster shows
// math and seed of every node once.
const (
	demoMath = "math"
	demoSeed = "seed"
)

// cmdEnv is what a run has: its flags and arguments, and where to write.
type cmdEnv struct {
	cfg            *chaosFlags
	args           []string
	stdout, stderr io.Writer
}

// fail prints one error line and returns exitFailure.
func (c *cmdEnv) fail(err error) int {
	fmt.Fprintf(c.stderr, "netsvc-chaos: %s\n", oneLine(err.Error()))
	return exitFailure
}

// usageError prints a usage error and the hint, and returns exitUsage.
func (c *cmdEnv) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "netsvc-chaos: %s\n", fmt.Sprintf(format, args...))
	fmt.Fprintln(c.stderr, "run 'netsvc-chaos --help' for usage")
	return exitUsage
}

// run runs the command line args (without the program name) and returns
// the exit code. ctx ends the run as an interrupt does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("netsvc-chaos", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported here, as one line
	env := &cmdEnv{cfg: &chaosFlags{}, stdout: stdout, stderr: stderr}
	env.cfg.register(fs)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		return env.usageError("%v", err)
	}
	env.args = fs.Args()
	return runChaos(ctx, env)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: netsvc-chaos [--duration D] [--nodes N] [--seed N] [--bin PATH] [flags]

Kill and restart netsvc nodes under load and check that every call ends
(a reliability test; test tooling, not part of netsvc). The nodes run
the netsvc binary of --bin, or the netsvc on PATH; build one with
"go build -o netsvc ./cmd/netsvc".

Flags:
`)
	fs := flag.NewFlagSet("netsvc-chaos", flag.ContinueOnError)
	(&chaosFlags{}).register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit status: 0 when every guarantee held, 1 when one broke, 2 for a
usage error.
`)
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
