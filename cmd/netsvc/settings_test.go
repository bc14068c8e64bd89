package main

import (
	"bytes"
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
