package main

// Secrets from a flag, a file or the environment, each saying where it
// came from and never what it is.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// The settings layer: values a command takes from a flag, from a file a
// flag names, or from the environment, with one precedence rule for all
// of them: the flag wins over the file, the file over the variable.
// Secrets come this way so they need not sit on the command line, where
// anyone on the host reads them with ps.
//
// A setting is declared once below, bound to a command's flags with
// settings.bind, and resolved by run after the flags are parsed, before
// the command runs. Resolving records where each value came from, so
// messages can say "token from NETSVC_TOKEN" without ever printing it.

// setting declares one value and where it may come from.
type setting struct {
	flag   string // its flag, without dashes: "token" is --token
	file   string // the flag naming a file that holds it ("token-file"), or "" for none
	env    string // its environment variable, or "" for none
	what   string // what it is, in messages: "exchange token"
	secret bool   // never printed; an empty value is an error, not "unset"
	list   bool   // several values: comma-separated in the flag or variable, one a line in the file
}

// The settings the commands share; a new one is one line here and one
// bind call in each command that takes it.
var (
	tokenSetting        = setting{flag: "token", file: "token-file", env: "NETSVC_TOKEN", what: "exchange token", secret: true, list: true}
	gossipKeySetting    = setting{flag: "gossip-key", file: "gossip-key-file", env: "NETSVC_GOSSIP_KEY", what: "gossip key", secret: true}
	consoleTokenSetting = setting{flag: "console-token", file: "console-token-file", env: "NETSVC_CONSOLE_TOKEN", what: "console token", secret: true}
)

// sources names the other places a setting may come from, for help
// texts and messages: "--token, --token-file or NETSVC_TOKEN".
func (s setting) sources() string {
	names := []string{"--" + s.flag}
	if s.file != "" {
		names = append(names, "--"+s.file)
	}
	if s.env != "" {
		names = append(names, s.env)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// settingValue is a setting as resolved: what it holds and where that
// came from. Its String and LogValue never show a secret.
type settingValue struct {
	vals   []string // one value, or several for a list setting (two tokens while rotating); nil when unset
	source string   // "--token", "--token-file /run/secrets/token", "NETSVC_TOKEN"; "" for the default or unset
	secret bool
}

// isSet reports whether the setting holds a value.
func (v settingValue) isSet() bool { return len(v.vals) > 0 }

// get returns the (first) value, "" when unset.
func (v settingValue) get() string {
	if len(v.vals) == 0 {
		return ""
	}
	return v.vals[0]
}

// list returns every value, nil when unset.
func (v settingValue) list() []string { return append([]string(nil), v.vals...) }

// from says where the value came from: "from NETSVC_TOKEN", or "not set".
func (v settingValue) from() string {
	switch {
	case !v.isSet():
		return "not set"
	case v.source == "":
		return "default"
	default:
		return "from " + v.source
	}
}

// String shows a plain value, and of a secret only how many values it
// holds and where they came from.
func (v settingValue) String() string {
	switch {
	case !v.isSet():
		return v.from()
	case v.secret && len(v.vals) > 1:
		return fmt.Sprintf("%d values %s", len(v.vals), v.from())
	case v.secret:
		return v.from()
	}
	return strings.Join(v.vals, ",")
}

// GoString keeps %#v from showing a secret too.
func (v settingValue) GoString() string { return v.String() }

// LogValue keeps a secret out of log lines however it is logged.
func (v settingValue) LogValue() slog.Value { return slog.StringValue(v.String()) }

// settings are the settings one command binds. A command's flag struct
// embeds it; run resolves it after parsing the flags.
type settings struct {
	bound []*binding
}

// binding is one setting bound to a command's flags.
type binding struct {
	setting
	dst      *settingValue
	def      string // the flag's default, for a setting that is not secret
	flagText string // the flag as parsed
	filePath string // the file flag as parsed
}

// bind registers s's flag (with def and usage, to which the help adds
// where else it may come from) and its file flag on fs; run fills dst
// from them or the environment before the command runs.
func (ss *settings) bind(fs *flag.FlagSet, dst *settingValue, s setting, def, usage string) {
	b := &binding{setting: s, dst: dst, def: def}
	ss.bound = append(ss.bound, b)
	var also []string
	if s.file != "" {
		also = append(also, "--"+s.file+" FILE")
	}
	if s.env != "" {
		also = append(also, "$"+s.env)
	}
	if len(also) > 0 {
		usage += " (or " + strings.Join(also, ", or ") + ")"
	}
	fs.StringVar(&b.flagText, s.flag, def, usage)
	if s.file != "" {
		fileUsage := "read the " + s.what + " from `FILE` instead of --" + s.flag
		if s.list {
			fileUsage += ": one a line, two while rotating"
		}
		fs.StringVar(&b.filePath, s.file, "", fileUsage)
	}
	*dst = settingValue{secret: s.secret}
}

// boundSettings gives run the settings of a command's flag struct.
func (ss *settings) boundSettings() *settings { return ss }

// hasSettings is a command's flag struct that embeds settings.
type hasSettings interface{ boundSettings() *settings }

// usageProblem is a settings error in the command line itself (exit 2);
// other settings errors are in a file or variable (exit 1).
type usageProblem struct{ error }

// resolve fills every bound setting from the flags set on fs, the files
// they name, or lookup (os.LookupEnv), in that order of precedence. Its
// errors are one line that names the flag, file or variable, never the
// value.
func (ss *settings) resolve(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, b := range ss.bound {
		v, err := b.resolve(given[b.flag], b.file != "" && given[b.file], lookup)
		if err != nil {
			return err
		}
		*b.dst = v
	}
	return nil
}

func (b *binding) resolve(flagGiven, fileGiven bool, lookup func(string) (string, bool)) (settingValue, error) {
	v := settingValue{secret: b.secret}
	switch {
	case flagGiven && fileGiven:
		return v, usageProblem{fmt.Errorf("--%s and --%s both give the %s: use one", b.flag, b.file, b.what)}
	case flagGiven:
		v.source = "--" + b.flag
		v.vals = b.split(b.flagText)
		if len(v.vals) == 0 && b.secret {
			return v, usageProblem{fmt.Errorf("--%s is empty: give the %s, or leave the flag out", b.flag, b.what)}
		}
	case fileGiven:
		if b.filePath == "" {
			return v, usageProblem{fmt.Errorf("--%s is empty: want a FILE", b.file)}
		}
		v.source = "--" + b.file + " " + b.filePath
		text, err := readSettingFile(b.filePath)
		if err != nil {
			return v, fmt.Errorf("cannot read the %s from --%s %s: %v", b.what, b.file, b.filePath, err)
		}
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				v.vals = append(v.vals, l)
			}
		}
		if len(v.vals) == 0 {
			return v, fmt.Errorf("--%s %s holds no %s", b.file, b.filePath, b.what)
		}
		if len(v.vals) > 1 && !b.list {
			return v, fmt.Errorf("--%s %s holds %d lines: want one %s", b.file, b.filePath, len(v.vals), b.what)
		}
	default:
		text, ok := "", false
		if b.env != "" {
			text, ok = lookup(b.env)
		}
		if !ok {
			if b.def != "" {
				v.vals = []string{b.def}
			}
			return v, nil
		}
		v.source = b.env
		v.vals = b.split(text)
		if len(v.vals) == 0 && b.secret {
			return v, fmt.Errorf("%s is set but holds no %s: unset it, or give the %s", b.env, b.what, b.what)
		}
	}
	return v, nil
}

// split reads a flag's or variable's text: a list setting's values are
// comma-separated; white space around values is not part of them.
func (b *binding) split(text string) []string {
	if !b.list {
		if t := strings.TrimSpace(text); t != "" || !b.secret {
			return []string{t}
		}
		return nil
	}
	var out []string
	for _, s := range strings.Split(text, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// maxSettingFile bounds what a settings file may hold: a secret is a
// line, not a disk image named by mistake.
const maxSettingFile = 64 << 10

// readSettingFile reads a settings file. Its error leaves the path out
// (the caller names the file once) and never quotes the content.
func readSettingFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", pathless(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSettingFile+1))
	if err != nil {
		return "", pathless(err)
	}
	if len(b) > maxSettingFile {
		return "", fmt.Errorf("larger than %d KiB", maxSettingFile>>10)
	}
	return string(b), nil
}

// pathless drops the path an os error repeats.
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// printSettingsHelp lists the variables a command reads, for its help.
func printSettingsHelp(w io.Writer, ss *settings) {
	var envs []*binding
	for _, b := range ss.bound {
		if b.env != "" {
			envs = append(envs, b)
		}
	}
	if len(envs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nEnvironment (a flag wins over its file flag, a file over the variable):")
	for _, b := range envs {
		unless := "--" + b.flag
		if b.file != "" {
			unless += " or --" + b.file
		}
		note := ""
		if b.list {
			note = "; two comma-separated while rotating"
		}
		fmt.Fprintf(w, "  %-22s the %s, unless %s is given%s\n", b.env, b.what, unless, note)
	}
}
