package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeSecret writes text to a new file in the test's directory and
// returns its path.
func writeSecret(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// resolveArgs binds s alone on a fresh flag set, parses args and
// resolves it against the process environment, as run does.
func resolveArgs(s setting, args ...string) (settingValue, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ss settings
	var v settingValue
	ss.bind(fs, &v, s, "", "usage")
	if _, err := parseFlags(fs, args); err != nil {
		return v, err
	}
	err := ss.resolve(fs, os.LookupEnv)
	return v, err
}

// TestSettingsPrecedence checks the one rule: a flag wins over a file,
// a file over the environment, and each value knows its source.
func TestSettingsPrecedence(t *testing.T) {
	file := writeSecret(t, "from-file\n")
	for _, tc := range []struct {
		name       string
		env        bool
		args       []string
		want       []string
		wantSource string
	}{
		{"nothing", false, nil, nil, ""},
		{"env", true, nil, []string{"from-env"}, "NETSVC_TOKEN"},
		{"file over env", true, []string{"--token-file", file}, []string{"from-file"}, "--token-file " + file},
		{"flag over env", true, []string{"--token", "from-flag"}, []string{"from-flag"}, "--token"},
		{"flag", false, []string{"--token=from-flag"}, []string{"from-flag"}, "--token"},
		{"file", false, []string{"--token-file", file}, []string{"from-file"}, "--token-file " + file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env {
				t.Setenv("NETSVC_TOKEN", "from-env")
			} else {
				t.Setenv("NETSVC_TOKEN", "")
				os.Unsetenv("NETSVC_TOKEN") // restored by t.Setenv's cleanup
			}
			v, err := resolveArgs(tokenSetting, tc.args...)
			if err != nil || !reflect.DeepEqual(v.vals, tc.want) || v.source != tc.wantSource {
				t.Fatalf("got %q from %q, %v; want %q from %q", v.vals, v.source, err, tc.want, tc.wantSource)
			}
		})
	}
}

// TestSettingsFlagAndFileIsUsageError gives a secret's flag and its file
// flag at once to every command that takes the secret: a usage error
// naming both flags, and never the secret.
func TestSettingsFlagAndFileIsUsageError(t *testing.T) {
	file := writeSecret(t, "in-the-file\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "--token", "on-argv", "--token-file", file}, "--token and --token-file both give the exchange token: use one"},
		{[]string{"node", "--gossip-key-file", file, "--gossip-key", "on-argv"}, "--gossip-key and --gossip-key-file both give the gossip key: use one"},
		{[]string{"node", "--console-token", "on-argv", "--console-token-file", file}, "--console-token and --console-token-file both give the console token: use one"},
		{[]string{"call", "--token", "on-argv", "--token-file", file, "math", "multiply", "6", "7"}, "--token and --token-file both give"},
		{[]string{"publish", "--token", "on-argv", "--token-file", file, "--as", "p", "s", "1"}, "--token and --token-file both give"},
		{[]string{"subscribe", "--token", "on-argv", "--token-file", file, "seed", "next"}, "--token and --token-file both give"},
		{[]string{"services", "--token", "on-argv", "--token-file", file}, "--token and --token-file both give"},
		{[]string{"services", "--console", "127.0.0.1:1", "--console-token", "on-argv", "--console-token-file", file}, "--console-token and --console-token-file both give"},
		{[]string{"tree", "--console", "127.0.0.1:1", "--console-token", "on-argv", "--console-token-file", file}, "--console-token and --console-token-file both give"},
	} {
		r := runCmd(context.Background(), tc.args...)
		l := lines(r.stderr)
		if r.code != 2 || len(l) != 2 || !strings.HasPrefix(l[0], "netsvc "+tc.args[0]+": "+tc.want) ||
			l[1] != "run 'netsvc help "+tc.args[0]+"' for usage" || r.stdout != "" {
			t.Errorf("%v: want exit 2 and %q; got %v", tc.args, tc.want, r)
		}
		if strings.Contains(r.stderr, "on-argv") || strings.Contains(r.stderr, "in-the-file") {
			t.Errorf("%v: the error shows the secret: %s", tc.args, r.stderr)
		}
	}
}

// TestSettingsValues checks how values read: two tokens for rotation,
// comma-separated or one a line; white space and blank lines ignored; a
// single-valued secret kept whole; and the errors, which name their
// source and never the value.
func TestSettingsValues(t *testing.T) {
	t.Setenv("NETSVC_TOKEN", "")
	os.Unsetenv("NETSVC_TOKEN")
	t.Setenv("NETSVC_CONSOLE_TOKEN", "")
	os.Unsetenv("NETSVC_CONSOLE_TOKEN")
	ok := func(s setting, want []string, args ...string) {
		t.Helper()
		v, err := resolveArgs(s, args...)
		if err != nil || !reflect.DeepEqual(v.vals, want) {
			t.Errorf("%v: got %q, %v; want %q", args, v.vals, err, want)
		}
	}
	ok(tokenSetting, []string{"tok-new", "tok-old"}, "--token", " tok-new , tok-old ")
	ok(tokenSetting, []string{"tok-new", "tok-old"}, "--token-file", writeSecret(t, "\n  tok-new \r\n\n\ttok-old\n\n"))
	ok(tokenSetting, []string{"tok-new"}, "--token", "tok-new,")
	ok(consoleTokenSetting, []string{"a,b c"}, "--console-token", " a,b c ")
	ok(consoleTokenSetting, []string{"c0ns0le"}, "--console-token-file", writeSecret(t, "\n c0ns0le \n\n"))
	t.Setenv("NETSVC_TOKEN", "tok-new,tok-old")
	ok(tokenSetting, []string{"tok-new", "tok-old"})

	missing := filepath.Join(t.TempDir(), "missing")
	fail := func(s setting, usage bool, want string, args ...string) {
		t.Helper()
		_, err := resolveArgs(s, args...)
		if err == nil || err.Error() != want || errors.As(err, new(usageProblem)) != usage {
			t.Errorf("%v: got %v; want %q (usage error: %v)", args, err, want, usage)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the secret: %v", args, err)
		}
	}
	fail(tokenSetting, true, "--token is empty: give the exchange token, or leave the flag out", "--token", " , ")
	fail(tokenSetting, true, "--token-file is empty: want a FILE", "--token-file", "")
	fail(tokenSetting, false, "cannot read the exchange token from --token-file "+missing+": no such file or directory", "--token-file", missing)
	blank := writeSecret(t, "\n  \n\t\n")
	fail(tokenSetting, false, "--token-file "+blank+" holds no exchange token", "--token-file", blank)
	two := writeSecret(t, "s3cret\ns3cret2\n")
	fail(consoleTokenSetting, false, "--console-token-file "+two+" holds 2 lines: want one console token", "--console-token-file", two)
	fail(gossipKeySetting, false, "--gossip-key-file "+two+" holds 2 lines: want one gossip key", "--gossip-key-file", two)
	dir := t.TempDir()
	fail(tokenSetting, false, "cannot read the exchange token from --token-file "+dir+": is a directory", "--token-file", dir)
	t.Setenv("NETSVC_TOKEN", " , ")
	fail(tokenSetting, false, "NETSVC_TOKEN is set but holds no exchange token: unset it, or give the exchange token")
	t.Setenv("NETSVC_CONSOLE_TOKEN", "  ")
	fail(consoleTokenSetting, false, "NETSVC_CONSOLE_TOKEN is set but holds no console token: unset it, or give the console token")
}

// TestSettingValueHidesSecrets prints a secret every usual way: only its
// source and count show.
func TestSettingValueHidesSecrets(t *testing.T) {
	v := settingValue{vals: []string{"s3cret-new", "s3cret-old"}, source: "NETSVC_TOKEN", secret: true}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("started", "token", v)
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q", v, v, v, v, v), logged.String()} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "2 values from NETSVC_TOKEN") {
			t.Errorf("%s", s)
		}
	}
	if s := fmt.Sprint(settingValue{secret: true}); s != "not set" {
		t.Errorf("unset: %s", s)
	}
	if s := fmt.Sprint(settingValue{vals: []string{"127.0.0.1:1"}, source: "NETSVC_SERVER"}); s != "127.0.0.1:1" {
		t.Errorf("a value that is not secret shows: %s", s)
	}
}

// TestHelpNamesFilesAndVariables checks each secret's help names its
// file flag and variable, in every command that takes it.
func TestHelpNamesFilesAndVariables(t *testing.T) {
	token := []string{"(or --token-file FILE, or $NETSVC_TOKEN)", "-token-file FILE", "NETSVC_TOKEN "}
	gossip := []string{"(or --gossip-key-file FILE, or $NETSVC_GOSSIP_KEY)", "-gossip-key-file FILE", "NETSVC_GOSSIP_KEY "}
	console := []string{"(or --console-token-file FILE, or $NETSVC_CONSOLE_TOKEN)", "-console-token-file FILE", "NETSVC_CONSOLE_TOKEN "}
	for cmd, wants := range map[string][][]string{
		"node":      {token, gossip, console},
		"call":      {token},
		"publish":   {token},
		"subscribe": {token},
		"services":  {token, console},
		"tree":      {console},
	} {
		r := runCmd(context.Background(), "help", cmd)
		if r.code != 0 || !strings.Contains(r.stdout, "Environment (a flag wins over its file flag, a file over the variable):") {
			t.Errorf("help %s: %v", cmd, r)
		}
		for _, want := range wants {
			for _, w := range want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help %s lacks %q:\n%s", cmd, w, r.stdout)
				}
			}
		}
	}
}

// TestExposures checks which listeners the node calls unguarded: the
// exchange beyond loopback without a token or TLS, gossip beyond
// loopback without a key; loopback says nothing.
func TestExposures(t *testing.T) {
	tok := settingValue{vals: []string{"t"}, source: "--token", secret: true}
	key := settingValue{vals: []string{"k"}, source: "--gossip-key", secret: true}
	for _, tc := range []struct {
		listen, gossip string
		token, gkey    settingValue
		tlsCert        string
		want           []string
	}{
		{listen: "127.0.0.1:11111", gossip: "127.0.0.1:7946"},
		{listen: "127.0.0.2:11111", gossip: "127.9.9.9:7946"},
		{listen: "[::1]:11111", gossip: "[::1]:7946"},
		{listen: "localhost:11111", gossip: "LOCALHOST:7946"},
		{listen: "0.0.0.0:11111", want: []string{"exchange open to other hosts without a token or TLS"}},
		{listen: ":11111", want: []string{"exchange open to other hosts without a token or TLS"}},
		{listen: "[::]:11111", want: []string{"exchange open to other hosts without a token or TLS"}},
		{listen: "192.0.2.7:11111", want: []string{"exchange open to other hosts without a token or TLS"}},
		{listen: "0.0.0.0:11111", token: tok},
		{listen: "0.0.0.0:11111", tlsCert: "node.crt"},
		{listen: "127.0.0.1:0", gossip: "0.0.0.0:7946", want: []string{"gossip open to other hosts without a key"}},
		{listen: "127.0.0.1:0", gossip: ":7946", token: tok, want: []string{"gossip open to other hosts without a key"}},
		{listen: "127.0.0.1:0", gossip: "0.0.0.0:7946", gkey: key},
		{listen: "0.0.0.0:0", gossip: "0.0.0.0:7946", want: []string{
			"exchange open to other hosts without a token or TLS", "gossip open to other hosts without a key"}},
	} {
		cfg := nodeFlags{gossip: tc.gossip, token: tc.token, gossipKey: tc.gkey}
		cfg.tls.cert = tc.tlsCert
		var got []string
		for _, e := range exposures(cfg, tc.listen) {
			got = append(got, e.msg)
			if !strings.Contains(e.human, "127.0.0.1") || !strings.Contains(e.human, "beyond loopback") {
				t.Errorf("%+v: the line does not say what to do: %s", tc, e.human)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("listen %s gossip %s: got %q, want %q", tc.listen, tc.gossip, got, tc.want)
		}
	}
}
