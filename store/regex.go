package store

import (
	"database/sql/driver"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"

	"modernc.org/sqlite"
)

// $regex means Go's regexp (RE2) on both databases, so a query matches the
// same conversations wherever it runs, and its cost is linear in the text:
//
//   - On SQLite, regexpFunc is registered with the driver as a
//     deterministic SQL function and the query calls it with the pattern.
//   - On PostgreSQL, whose ~ operator speaks POSIX ARE (no \Q..\E, which
//     the SDK's contains() sends; different classes, anchors and case
//     folding), the pattern is parsed with regexp/syntax and written again
//     as an ARE that matches the same strings (postgresRegex): literals as
//     \u escapes, classes as explicit ranges, case folding expanded into
//     classes, multi-line anchors and ASCII word boundaries as lookaround,
//     no captures, no backreferences. The parser's limits on pattern size
//     and program size bound the ARE it produces.

// regexpFunc is the SQLite function name; unusual, so it cannot collide
// with an application's own function.
const regexpFunc = "realtime_regexp"

func init() {
	// modernc's registry is process-wide; registering twice is a bug.
	if err := sqlite.RegisterDeterministicScalarFunction(regexpFunc, 2, sqliteRegexp); err != nil {
		panic(fmt.Sprintf("store: register %s: %v", regexpFunc, err))
	}
}

// regexCache keeps compiled patterns, so that a query scanning many rows
// compiles its pattern once.
var regexCache struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

func cachedRegexp(pattern string) (*regexp.Regexp, error) {
	regexCache.Lock()
	defer regexCache.Unlock()
	if re, ok := regexCache.m[pattern]; ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if regexCache.m == nil || len(regexCache.m) >= 256 {
		regexCache.m = map[string]*regexp.Regexp{}
	}
	regexCache.m[pattern] = re
	return re, nil
}

// sqliteRegexp is realtime_regexp(pattern, text): whether text matches;
// false for non-text values.
func sqliteRegexp(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	pattern, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("%s: pattern is not text", regexpFunc)
	}
	var text string
	switch v := args[1].(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return int64(0), nil
	}
	re, err := cachedRegexp(pattern)
	if err != nil {
		return nil, err
	}
	if re.MatchString(text) {
		return int64(1), nil
	}
	return int64(0), nil
}

// postgresRegex rewrites a Go regexp as a PostgreSQL ARE that matches the
// same strings (PostgreSQL text never contains NUL, so NUL is dropped from
// classes and a literal NUL matches nothing).
func postgresRegex(pattern string) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := writeARE(&b, re.Simplify()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// noMatch is an ARE class no PostgreSQL character is in.
const noMatch = `[^\u0001-\U0010ffff]`

// asciiWord is RE2's \w (ASCII only; ARE's \w follows the locale).
const asciiWord = `[0-9A-Za-z_]`

func writeARE(b *strings.Builder, re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpNoMatch:
		b.WriteString(noMatch)
	case syntax.OpEmptyMatch:
		b.WriteString("(?:)")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				writeClass(b, foldRanges(r))
			} else if r == 0 {
				b.WriteString(noMatch)
			} else {
				writeRune(b, r)
			}
		}
	case syntax.OpCharClass:
		writeClass(b, re.Rune)
	case syntax.OpAnyCharNotNL:
		b.WriteString(`[^\u000a]`)
	case syntax.OpAnyChar:
		b.WriteString(`[\u0001-\U0010ffff]`)
	case syntax.OpBeginLine:
		b.WriteString(`(?:\A|(?<=\u000a))`)
	case syntax.OpEndLine:
		b.WriteString(`(?:\Z|(?=\u000a))`)
	case syntax.OpBeginText:
		b.WriteString(`\A`)
	case syntax.OpEndText:
		b.WriteString(`\Z`)
	case syntax.OpWordBoundary:
		b.WriteString(`(?:(?<=` + asciiWord + `)(?!` + asciiWord + `)|(?<!` + asciiWord + `)(?=` + asciiWord + `))`)
	case syntax.OpNoWordBoundary:
		b.WriteString(`(?:(?<=` + asciiWord + `)(?=` + asciiWord + `)|(?<!` + asciiWord + `)(?!` + asciiWord + `))`)
	case syntax.OpCapture:
		b.WriteString("(?:")
		if err := writeARE(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteString(")")
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		// Greediness only changes what a match spans, not whether there
		// is one, so every quantifier is written greedy.
		b.WriteString("(?:")
		if err := writeARE(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteString(")")
		b.WriteString(map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if err := writeARE(b, s); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		b.WriteString("(?:")
		for i, s := range re.Sub {
			if i > 0 {
				b.WriteString("|")
			}
			if err := writeARE(b, s); err != nil {
				return err
			}
		}
		b.WriteString(")")
	default:
		// OpRepeat does not survive Simplify.
		return fmt.Errorf("store: regexp operator %v has no PostgreSQL form", re.Op)
	}
	return nil
}

// foldRanges returns r's case-folding orbit as class ranges.
func foldRanges(r rune) []rune {
	out := []rune{r, r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		out = append(out, f, f)
	}
	return out
}

// writeClass writes ranges (pairs lo, hi) as a bracket expression.
func writeClass(b *strings.Builder, ranges []rune) {
	var body strings.Builder
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if lo == 0 {
			lo = 1
		}
		if lo > hi {
			continue
		}
		writeRune(&body, lo)
		if hi > lo {
			body.WriteString("-")
			writeRune(&body, hi)
		}
	}
	if body.Len() == 0 {
		b.WriteString(noMatch)
		return
	}
	b.WriteString("[")
	b.WriteString(body.String())
	b.WriteString("]")
}

// writeRune writes r as itself when it is an ASCII letter or digit, else
// as an escape, so nothing in the pattern is ARE syntax by accident.
func writeRune(b *strings.Builder, r rune) {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		b.WriteRune(r)
	case r <= 0xffff:
		fmt.Fprintf(b, `\u%04x`, r)
	default:
		fmt.Fprintf(b, `\U%08x`, r)
	}
}
