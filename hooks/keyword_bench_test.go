package hooks

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// benchWords returns n deterministic pseudo-random words, about one in five
// Chinese, the rest lower-case ASCII of 4 to 10 letters.
func benchWords(n int) []string {
	rng := rand.New(rand.NewPCG(42, 7))
	words := make([]string, n)
	for i := range words {
		var b strings.Builder
		if rng.IntN(5) == 0 {
			for range 2 + rng.IntN(3) {
				b.WriteRune(rune(0x4E00 + rng.IntN(0x9FA5-0x4E00)))
			}
		} else {
			for range 4 + rng.IntN(7) {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		words[i] = b.String()
	}
	return words
}

// benchMessages returns typical chat messages of 100-200 bytes: clean ones
// and ones with a listed word (in mixed case) in the middle.
func benchMessages(words []string) (clean, dirty []string) {
	bases := []string{
		"Hey, are we still meeting at the cafe near the station tomorrow at 10? Let me know if that time works for you.",
		"我们明天上午十点在车站附近的咖啡馆见面吗？如果时间不合适请告诉我，我们可以改到下午。",
		"Just pushed the fix for the login bug, can you review the PR when you have a minute? 谢谢！Thanks a lot!",
		"Happy birthday!!! 🎉🎂 Hope you have an amazing day with your family and friends, see you at the party tonight.",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, b := range bases {
		clean = append(clean, b)
		w := words[rng.IntN(len(words))]
		if rng.IntN(2) == 0 {
			w = strings.ToUpper(w)
		}
		mid := len(b) / 2
		for !strings.HasPrefix(b[mid:], " ") && mid < len(b) {
			mid++
		}
		dirty = append(dirty, b[:mid]+" "+w+b[mid:])
	}
	return clean, dirty
}

// naiveFilter is the baseline: one strings.Contains (and ReplaceAll) per word
// on the lower-cased text. It loses the original case, which the automaton
// keeps, so it does less work than a correct naive filter would.
func naiveFilter(lowerWords []string, text, repl string) (string, bool) {
	lower := strings.ToLower(text)
	changed := false
	for _, w := range lowerWords {
		if strings.Contains(lower, w) {
			lower = strings.ReplaceAll(lower, w, repl)
			changed = true
		}
	}
	return lower, changed
}

func BenchmarkKeywordFilter(b *testing.B) {
	words := benchWords(10000)
	clean, dirty := benchMessages(words)
	f := NewKeywordFilter(words, nil)
	for _, m := range clean {
		if _, changed := f.Filter(m); changed {
			b.Fatalf("clean message matched: %q", m)
		}
	}
	for _, m := range dirty {
		if _, changed := f.Filter(m); !changed {
			b.Fatalf("dirty message not matched: %q", m)
		}
	}
	lower := make([]string, len(words))
	for i, w := range words {
		lower[i] = strings.ToLower(w)
	}
	filters := []struct {
		name string
		fn   func(string) (string, bool)
	}{
		{"AhoCorasick", f.Filter},
		{"Naive", func(s string) (string, bool) { return naiveFilter(lower, s, DefaultReplacement) }},
	}
	sets := []struct {
		name string
		msgs []string
	}{{"clean", clean}, {"dirty", dirty}}
	for _, fl := range filters {
		for _, set := range sets {
			b.Run(fl.name+"/"+set.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					fl.fn(set.msgs[n%len(set.msgs)])
					n++
				}
			})
		}
	}
	b.Run("Build10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newMatcher(words)
		}
	})
}
