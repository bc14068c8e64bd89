package cluster

import (
	"log/slog"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{
		Process:  "0123456789abcdef",
		Node:     "xs-a",
		Exchange: "127.0.0.1:11111",
		Group:    "blue",
		Role:     RoleServer,
		Console:  "127.0.0.1:8080",
		Version:  "v1.2.3",
		Protocol: 3,
	}
	b, err := m.normalized().encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.normalized(); got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if got.Cluster != DefaultCluster {
		t.Errorf("cluster %q, want the default %q", got.Cluster, DefaultCluster)
	}
	t.Logf("typical metadata: %d bytes: %s", len(b), b)

	// A newer member may add fields.
	got, err = decodeMeta([]byte(`{"node":"n","protocol":3,"future":{"x":1}}`))
	if err != nil || got.Node != "n" || got.Protocol != 3 {
		t.Errorf("decode with an unknown field = %+v, %v", got, err)
	}
}

func TestMetaSizeLimit(t *testing.T) {
	m := Meta{Node: "n", Version: strings.Repeat("v", MetaMaxSize)}
	if _, err := m.encode(); err == nil {
		t.Fatal("oversized meta encoded without error")
	}
	m.Version = "v"
	base, _ := m.encode()
	m.Version = strings.Repeat("v", 1+MetaMaxSize-len(base))
	if b, err := m.encode(); err != nil || len(b) != MetaMaxSize {
		t.Errorf("meta of exactly %d bytes: len %d, %v", MetaMaxSize, len(b), err)
	}
}

func TestIncompatibility(t *testing.T) {
	self := Meta{Node: "self", Protocol: 1}.normalized()
	for _, tc := range []struct {
		raw, want string
	}{
		{`{"node":"x","protocol":1}`, ""},
		{`{"node":"x","protocol":1,"cluster":"netsvc"}`, ""},
		{`{"node":"x","protocol":2}`, "protocol 2"},
		{`{"node":"x","protocol":1,"cluster":"other"}`, `cluster "other"`},
		{`{"protocol":1}`, "no node name"},
		{``, "no metadata"},
		{`garbage`, "undecodable"},
		{`{"node":7}`, "undecodable"},
	} {
		got := incompatibility(self, []byte(tc.raw))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("incompatibility(%q) = %q, want it to mention %q", tc.raw, got, tc.want)
		}
	}
}

func TestParseMemberlistLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5\n", slog.LevelDebug, "Stream connection from=127.0.0.1:5"},
		{"[INFO] memberlist: Suspect x has failed, no acks received\n", slog.LevelInfo, "Suspect x has failed, no acks received"},
		{"[WARN] memberlist: Was able to connect to x over TCP but UDP probes failed\n", slog.LevelWarn, "Was able to connect to x over TCP but UDP probes failed"},
		{"[ERR] memberlist: Failed to receive: EOF\n", slog.LevelError, "Failed to receive: EOF"},
		{"[ERROR] memberlist: something\n", slog.LevelError, "something"},
		{"[ERR] Failed to shutdown transport: x\n", slog.LevelError, "Failed to shutdown transport: x"},
		{"no level at all\n", slog.LevelInfo, "no level at all"},
		{"[NOTICE] odd\n", slog.LevelInfo, "[NOTICE] odd"},
		{"[WARN] memberlist: ignoring alive message for 'x#1': " + vetoMarker + ": protocol 2\n", slog.LevelDebug, "ignoring alive message for 'x#1': " + vetoMarker + ": protocol 2"},
	} {
		level, msg := parseMemberlistLine(tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("parse(%q) = %v %q, want %v %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}
}

func TestMemberlistLoggerForwardsLevels(t *testing.T) {
	h := newLogRecorder()
	l := memberlistLogger(slog.New(h))
	l.Printf("[DEBUG] memberlist: hidden")
	l.Printf("[WARN] memberlist: careful %d", 1)
	l.Printf("[ERR] memberlist: broken")
	if n := h.count(func(r logRecord) bool { return r.msg == "hidden" }); n != 0 {
		t.Errorf("debug line recorded by an Info handler")
	}
	if n := h.count(func(r logRecord) bool { return r.msg == "careful 1" && r.level == slog.LevelWarn }); n != 1 {
		t.Errorf("warn line: %d records", n)
	}
	if n := h.count(func(r logRecord) bool { return r.msg == "broken" && r.level == slog.LevelError }); n != 1 {
		t.Errorf("error line: %d records", n)
	}
}

func TestPresetTimings(t *testing.T) {
	mc, err := Fast.memberlistConfig()
	if err != nil {
		t.Fatal(err)
	}
	if mc.ProbeInterval.Milliseconds() != 200 || mc.ProbeTimeout.Milliseconds() != 100 ||
		mc.SuspicionMult != 2 || mc.GossipInterval.Milliseconds() != 50 || mc.RetransmitMult != 6 ||
		mc.PushPullInterval.Seconds() != 5 || mc.GossipToTheDeadTime.Seconds() != 5 ||
		mc.DeadNodeReclaimTime.Seconds() != 1 || mc.TCPTimeout.Seconds() != 1 {
		t.Errorf("Fast preset differs from the notes: %+v", mc)
	}
	for _, p := range []Preset{LAN, Local, Fast} {
		if _, err := p.memberlistConfig(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	if s := Preset(9).String(); s != "Preset(9)" {
		t.Errorf("String = %q", s)
	}
}
