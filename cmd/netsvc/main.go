// Command netsvc runs netsvc exchange nodes and talks to them.
//
// One binary, one subcommand per job:
//
//	netsvc node        run an exchange server node (optionally with the demo services)
//	netsvc call        call a service method through a node and print the JSON result
//	netsvc publish     publish a report as a named service
//	netsvc subscribe   print the reports of a service as JSON lines
//	netsvc services    list the services a node sees
//	netsvc watch       print registry changes as JSON lines
//	netsvc members     list the cluster members a node knows
//	netsvc ping        round trips to a node or a service
//	netsvc tree        print the live actor tree of a node (from its console)
//	netsvc bench       run the benchmark in the peer topology
//	netsvc version     print the version
//	netsvc completion  print a bash or zsh completion script
//
// The client commands (call, publish, subscribe, services) start a small
// client process of their own that links to one node with --server
// (and --group for another exchange group), waits until the node's
// registry has arrived, does their job and stop. Arguments and results
// are JSON on the command line: call arguments are JSON texts, integral
// numbers become integers and others floats, so methods taking int or
// float64 both work.
//
// Secrets (the exchange token, the gossip key, the console token) may
// come from a flag (--token), a file (--token-file) or the environment
// (NETSVC_TOKEN): a flag wins over a file, a file over the variable, so
// they need not be on the command line for ps to show.
//
// Exit status: 0 on success, 1 when the work failed (a call failure, an
// unreachable or refusing server, a secret's file that cannot be read),
// 2 for a usage error. Every error is one line on stderr; data goes to
// stdout.
//
// Run "netsvc help COMMAND" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
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
	exitFailure = 1 // the work failed
	exitUsage   = 2 // bad command line
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // the synopsis after "netsvc NAME"
	flags   func(fs *flag.FlagSet) any
	run     func(ctx context.Context, c *cmdEnv) int
}

// cmdEnv is what a subcommand runs with: its parsed flags and
// positional arguments, and where to write.
type cmdEnv struct {
	name           string
	fs             *flag.FlagSet
	cfg            any
	args           []string
	stdout, stderr io.Writer
}

// fail prints one error line for the command and returns exitFailure.
func (c *cmdEnv) fail(err error) int {
	fmt.Fprintf(c.stderr, "netsvc %s: %s\n", c.name, oneLine(err.Error()))
	return exitFailure
}

// usageError prints a usage error and the hint, and returns exitUsage.
func (c *cmdEnv) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "netsvc %s: %s\n", c.name, fmt.Sprintf(format, args...))
	fmt.Fprintf(c.stderr, "run 'netsvc help %s' for usage\n", c.name)
	return exitUsage
}

func commands() []*command {
	return []*command{
		nodeCommand(),
		callCommand(),
		publishCommand(),
		subscribeCommand(),
		servicesCommand(),
		watchCommand(),
		membersCommand(),
		pingCommand(),
		treeCommand(),
		benchCommand(),
		versionCommand(),
		completionCommand(),
	}
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs the command line args (without the program name) and returns
// the exit code. ctx ends long-running commands (node, subscribe, a
// publisher with a lifetime) as an interrupt does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "--version", "-version":
		return run(ctx, append([]string{"version"}, args[1:]...), stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c := findCommand(args[1])
			if c == nil {
				fmt.Fprintf(stderr, "netsvc help: unknown command %q\n", args[1])
				fmt.Fprintln(stderr, "run 'netsvc help' for usage")
				return exitUsage
			}
			printCommandUsage(stdout, c)
			return exitOK
		}
		printUsage(stdout)
		return exitOK
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(stderr, "netsvc: unknown command %q\n", name)
		fmt.Fprintln(stderr, "run 'netsvc help' for usage")
		return exitUsage
	}
	fs := flag.NewFlagSet("netsvc "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported here, as one line
	env := &cmdEnv{name: c.name, fs: fs, stdout: stdout, stderr: stderr}
	if c.flags != nil {
		env.cfg = c.flags(fs)
	}
	pos, err := parseFlags(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, c)
		return exitOK
	}
	if err != nil {
		return env.usageError("%v", err)
	}
	env.args = pos
	if hs, ok := env.cfg.(hasSettings); ok {
		if err := hs.boundSettings().resolve(fs, os.LookupEnv); err != nil {
			if errors.As(err, new(usageProblem)) {
				return env.usageError("%v", err)
			}
			return env.fail(err)
		}
	}
	return c.run(ctx, env)
}

// parseFlags parses flags given anywhere on the command line, before,
// between or after the positional arguments ("publish ... SUBJECT JSON
// --lifetime 10s"), and returns the positional ones. "--" ends the
// flags. An argument that reads as a negative number is positional, so
// "call math add -1 2" works.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) < 2 || a[0] != '-' || isNumber(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			f := fs.Lookup(name)
			if f == nil || isBoolFlag(f) {
				continue // unknown flags are reported by Parse
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `netsvc: an actor-model message exchange

Usage:
  netsvc COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help       print this help, or a command's with "netsvc help COMMAND"

Flags may come before or after the arguments. Exit status: 0 on success,
1 when the work failed, 2 for a usage error.
`)
}

func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("netsvc "+c.name+" "+c.usage), c.summary)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var cfg any
	if c.flags != nil {
		cfg = c.flags(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs)
	}
	if hs, ok := cfg.(hasSettings); ok {
		printSettingsHelp(w, hs.boundSettings())
	}
	if _, ok := cfg.(*nodeFlags); ok {
		fmt.Fprint(w, limitsHelp())
	}
	printExamples(w, c.name)
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
