package service_test

import (
	"strings"
	"testing"

	"github.com/netsvc-go/netsvc/service"
)

// Rule 19's pattern semantics, word by word.
func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		// Rule 19's own examples.
		{"prices.*", []string{"prices.ibm", "prices.msft"}, []string{"prices.nyse.ibm", "prices", "quotes.ibm", "prices.ibm.x"}},
		{"prices.>", []string{"prices.ibm", "prices.nyse.ibm", "prices.a.b.c.d"}, []string{"prices", "quotes.ibm", "pricesx.ibm"}},
		{"pri*.ibm", []string{"prices.ibm", "pri.ibm", "primo.ibm"}, []string{"prices.msft", "pr.ibm", "prices.nyse.ibm", "xprices.ibm"}},
		{"pr?ces.ibm", []string{"prices.ibm", "proces.ibm", "prïces.ibm"}, []string{"prces.ibm", "priices.ibm", "prices.msft"}},
		{"*", []string{"ibm", "prices", "a"}, []string{"prices.ibm", "a.b.c"}},
		{">", []string{"ibm", "prices.ibm", "a.b.c.d"}, nil},
		// Exact patterns.
		{"prices.ibm", []string{"prices.ibm"}, []string{"prices.ibm.x", "prices", "Prices.ibm", "prices.ib"}},
		{"end", []string{"end"}, []string{"ends", "end.x"}},
		// Wildcards in several places.
		{"*.time", []string{"system.time", "x.time"}, []string{"time", "system.date", "a.system.time"}},
		{"*.*", []string{"a.b"}, []string{"a", "a.b.c"}},
		{"a.*.c", []string{"a.b.c", "a.x.c"}, []string{"a.c", "a.b.b.c", "a.b.d"}},
		{"a.*.>", []string{"a.b.c", "a.b.c.d"}, []string{"a.b", "a", "b.b.c"}},
		{"*.>", []string{"a.b", "a.b.c"}, []string{"a"}},
		{"sys?em.*", []string{"system.time", "sysxem.date"}, []string{"sysem.time", "system"}},
		// Globs stay inside one word.
		{"a*", []string{"a", "abc", "a-b"}, []string{"a.b", "ba"}},
		{"*c", []string{"c", "abc"}, []string{"a.c", "cd"}},
		{"a*c*e", []string{"ace", "abcde", "accce", "acee"}, []string{"acd", "a.c.e", "abcdef"}},
		{"??", []string{"ab", "éé"}, []string{"a", "abc", "a.b"}},
		{"a?", []string{"ab"}, []string{"a", "a.", "abc"}},
		{"p*s.>", []string{"prices.ibm", "ps.x.y"}, []string{"prices", "prix.ibm"}},
	}
	for _, tt := range tests {
		p, err := service.CompilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("CompilePattern(%q): %v", tt.pattern, err)
		}
		if p.String() != tt.pattern {
			t.Errorf("String() = %q, want %q", p.String(), tt.pattern)
		}
		for _, s := range tt.match {
			if !p.Match(s) {
				t.Errorf("%q should match %q", tt.pattern, s)
			}
		}
		for _, s := range tt.noMatch {
			if p.Match(s) {
				t.Errorf("%q should not match %q", tt.pattern, s)
			}
		}
	}
}

func TestCompilePatternRejectsBadPatterns(t *testing.T) {
	bad := map[string]string{
		"":         "empty",
		"a.>.b":    `">" must be the whole last word`,
		"a>":       `">" must be the whole last word`,
		">.a":      `">" must be the whole last word`,
		"a..*":     "empty word",
		"*.":       "empty word",
		".>":       "empty word",
		"a\nb":     "newline",
		"a\x00b.*": "newline or NUL",
	}
	for p, want := range bad {
		_, err := service.CompilePattern(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompilePattern(%q) = %v, want an error saying %q", p, err, want)
		}
	}
	// A pattern without wildcards is taken as an exact subject.
	if p, err := service.CompilePattern("a..b"); err != nil || !p.Match("a..b") || p.Match("a.b") {
		t.Errorf("exact pattern a..b: %v", err)
	}
}

func TestMustCompilePattern(t *testing.T) {
	if !service.MustCompilePattern("x.*").Match("x.y") {
		t.Fatal("MustCompilePattern(x.*) does not match x.y")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustCompilePattern of a bad pattern did not panic")
		}
	}()
	service.MustCompilePattern("a.>.b")
}

// Long hostile patterns finish quickly (the glob never backtracks deeply).
func TestPatternGlobIsLinear(t *testing.T) {
	p := service.MustCompilePattern(strings.Repeat("a*", 50) + "b")
	s := strings.Repeat("a", 10000)
	if p.Match(s) {
		t.Fatal("matched a subject without b")
	}
	if !p.Match(s + "b") {
		t.Fatal("did not match a subject ending in b")
	}
}
