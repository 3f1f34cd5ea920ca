package store

import (
	"strings"
	"testing"

	"github.com/leanhub/realtime/internal/convquery"
)

// Every pattern the where parser accepts has a PostgreSQL form, of
// bounded size, and the rewrite never panics.
func FuzzPostgresRegex(f *testing.F) {
	for _, seed := range []string{
		`\Qa.b(\E`, `^\Qa\E\\E\Qb\E`, `(?i)tom$`, `(?m)^b`, `(?s)a.b`, `\bx\B`, `[^a-z]+`, `\p{Han}`, `a{2,5}`,
		`(a|b|)c*?`, `\x{1F600}`, `[\x00-\x{10FFFF}]`, `[^\x00-\x{10FFFF}]`, `\x00`, `(?i)[k-m]`, `\A\z`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		where := `{"name":{"$regex":` + quoteJSON(pattern) + `}}`
		filter, err := convquery.Parse([]byte(where), nil)
		if err != nil || filter == nil || filter.Regex == nil {
			return
		}
		are, err := postgresRegex(filter.Regex.String())
		if err != nil {
			t.Fatalf("%q: %v", pattern, err)
		}
		// Bounded by the parser's limits: about 64 bytes per instruction
		// or class range.
		if len(are) > 64*(convquery.DefaultLimits.MaxRegexInsts+convquery.DefaultLimits.MaxRegexRanges) {
			t.Fatalf("%q: %d bytes of ARE", pattern, len(are))
		}
		if strings.ContainsRune(are, 0) {
			t.Fatalf("%q: NUL in the ARE", pattern)
		}
	})
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
