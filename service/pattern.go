package service

// Subject patterns of subscriptions (rule 19).

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pattern is a compiled subject pattern (rule 19). Subjects are words
// separated by dots. In a pattern:
//
//   - "*" as a whole word matches exactly one word;
//   - ">" as the last word matches one or more words;
//   - "*" inside a word matches any run of characters within that word,
//     and "?" exactly one character ("price*", "pr?ces");
//   - anything else matches itself.
//
// Wildcards never cross a dot, except ">". A pattern without wildcards
// matches exactly one subject.
type Pattern struct {
	text  string
	exact bool     // no wildcard at all: compare strings
	words []string // split pattern, when not exact
	tail  bool     // last word is ">"
}

// CompilePattern checks and compiles a subject pattern.
func CompilePattern(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, fmt.Errorf("empty subject pattern")
	}
	if strings.ContainsAny(p, "\n\x00") {
		return Pattern{}, fmt.Errorf("subject pattern %q has a newline or NUL", p)
	}
	if !strings.ContainsAny(p, "*?>") {
		return Pattern{text: p, exact: true}, nil
	}
	words := strings.Split(p, ".")
	for i, w := range words {
		if w == "" {
			return Pattern{}, fmt.Errorf("subject pattern %q has an empty word", p)
		}
		if strings.Contains(w, ">") && (w != ">" || i != len(words)-1) {
			return Pattern{}, fmt.Errorf("subject pattern %q: \">\" must be the whole last word", p)
		}
	}
	pt := Pattern{text: p, words: words}
	if words[len(words)-1] == ">" {
		pt.tail = true
		pt.words = words[:len(words)-1]
	}
	return pt, nil
}

// MustCompilePattern is CompilePattern for patterns known to be valid.
func MustCompilePattern(p string) Pattern {
	pt, err := CompilePattern(p)
	if err != nil {
		panic(err)
	}
	return pt
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// Match reports whether subject matches the pattern.
func (p Pattern) Match(subject string) bool {
	if p.exact {
		return p.text == subject
	}
	rest := subject
	for i, w := range p.words {
		word, next, more := strings.Cut(rest, ".")
		if !matchWord(w, word) {
			return false
		}
		if !more { // the subject has no words left
			return i == len(p.words)-1 && !p.tail
		}
		rest = next
	}
	// Every pattern word matched and the subject has words left: only a
	// trailing ">" takes them.
	return p.tail
}

// matchWord matches one pattern word against one subject word.
func matchWord(pat, word string) bool {
	if pat == "*" {
		return true
	}
	if !strings.ContainsAny(pat, "*?") {
		return pat == word
	}
	return glob(pat, word)
}

// glob matches '*' (any run) and '?' (one character) within a single word.
func glob(pat, s string) bool {
	// Iterative matcher with one backtrack point: linear for practical
	// patterns and never recursive, so hostile patterns cannot blow the stack.
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[sx:])
				px++
				sx += n
				continue
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starPx >= 0 {
			_, n := utf8.DecodeRuneInString(s[starSx:])
			starSx += n
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	return px == len(pat)
}
