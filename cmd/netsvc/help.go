package main

// Help: each command's examples, flags printed as --flag (as README
// writes them), and shell completion generated from the same table.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// commandExamples are shown by "netsvc help COMMAND".
var commandExamples = map[string][]string{
	"node": {
		"netsvc node --demo                                   # one node with the demo services, console on 127.0.0.1:8080",
		"netsvc node --name b --listen 127.0.0.1:11112 --gossip 127.0.0.1:7947 --console 127.0.0.1:8081 --join 127.0.0.1:7946",
		"NETSVC_TOKEN=s3cret netsvc node --listen 0.0.0.0:11111 --advertise 10.0.0.1:11111 --log-format json",
	},
	"call": {
		"netsvc call math multiply 6 7                        # 42",
		"netsvc call math add -1 2                            # negative numbers are arguments, not flags",
		"NETSVC_SERVER=10.0.0.1:11111 netsvc call --timeout 2s orders count",
	},
	"publish": {
		"netsvc publish --as prices stock.ibm '{\"bid\": 140.5}'",
		"netsvc publish --as status up true --lifetime -1      # kept for late subscribers until interrupted",
		"netsvc publish --as alarms fire 1 --require-subscriber --wait 5s",
	},
	"subscribe": {
		"netsvc subscribe seed                                # every subject",
		"netsvc subscribe seed next --count 3",
		"netsvc subscribe prices 'stock.>' --metrics 127.0.0.1:9100",
	},
	"services": {
		"netsvc services",
		"netsvc services --json | jq '.[].name'",
		"netsvc services --console http://127.0.0.1:8080/",
	},
	"watch": {
		"netsvc watch                                         # every service coming and going",
		"netsvc watch math --count 1",
		"netsvc watch group:web-services",
	},
	"tree": {
		"netsvc tree                                          # the local node's console",
		"netsvc tree --console http://10.0.0.1:8080/ --console-token-file /run/secrets/console",
	},
	"bench": {
		"netsvc bench --mode rrpar --duration 5s",
		"netsvc bench --mode pub --size 1024 --json",
		"netsvc bench --mode rrpar --server 10.0.0.1:11111 --server 10.0.0.2:11111   # load a running cluster",
	},
	"version":    {"netsvc version", "netsvc --version"},
	"members":    {"netsvc members", "netsvc members --server 10.0.0.1:11111 --json"},
	"ping":       {"netsvc ping                                          # round trips to the node", "netsvc ping math --count 10"},
	"completion": {"netsvc completion bash > /etc/bash_completion.d/netsvc", "netsvc completion zsh > \"${fpath[1]}/_netsvc\"", "source <(netsvc completion bash)   # this shell only"},
}

// printFlags prints a flag set's flags as README writes them: --name.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && !strings.Contains(usage, "default") {
			usage += fmt.Sprintf(" (default %q)", def)
		}
		fmt.Fprintf(w, "    \t%s\n", strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

func printExamples(w io.Writer, name string) {
	if ex := commandExamples[name]; len(ex) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range ex {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// commandFlags returns the names of a command's flags, sorted.
func commandFlags(c *command) []string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	sort.Strings(names)
	return names
}

func completionCommand() *command {
	return &command{
		name:    "completion",
		summary: "print a shell completion script (bash or zsh) for the commands and their flags",
		usage:   "bash|zsh",
		run: func(_ context.Context, env *cmdEnv) int {
			if len(env.args) != 1 {
				return env.usageError("want bash or zsh")
			}
			switch env.args[0] {
			case "bash":
				writeBashCompletion(env.stdout)
			case "zsh":
				fmt.Fprintln(env.stdout, "#compdef netsvc\nautoload -U +X bashcompinit && bashcompinit")
				writeBashCompletion(env.stdout)
			default:
				return env.usageError("unknown shell %q: want bash or zsh", env.args[0])
			}
			return exitOK
		},
	}
}

// writeBashCompletion writes a bash completion function: command names
// first, then the flags of the command given.
func writeBashCompletion(w io.Writer) {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	names = append(names, "help")
	fmt.Fprintf(w, `# netsvc completion for bash (netsvc completion bash)
_netsvc() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  local words
  case "${COMP_WORDS[1]}" in
`, strings.Join(names, " "))
	for _, c := range commands() {
		fmt.Fprintf(w, "    %s) words=%q ;;\n", c.name, strings.Join(commandFlags(c), " "))
	}
	fmt.Fprintf(w, "    help) words=%q ;;\n", strings.Join(names, " "))
	fmt.Fprint(w, `  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _netsvc netsvc
`)
}
