package hooks

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/leanhub/realtime"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name  string
		words []string
		in    string
		want  string
	}{
		{"ascii", []string{"bad"}, "a bad word", "a *** word"},
		{"no match", []string{"bad"}, "all good here", "all good here"},
		{"mixed case", []string{"BadWord"}, "x bAdWoRd y BADWORD", "x *** y ***"},
		{"word list case", []string{"HELLO"}, "hello", "***"},
		{"chinese no spaces", []string{"坏话", "敏感"}, "你好坏话连篇很敏感吗", "你好***连篇很***吗"},
		{"chinese and ascii", []string{"badword"}, "你好badword", "你好***"},
		{"overlap leftmost longest", []string{"ab", "abc", "bc"}, "abcd", "***d"},
		{"overlap leftmost wins", []string{"bcd", "ab"}, "abcd", "***cd"},
		{"overlap rescan after", []string{"abcdefgh", "ab", "cd"}, "abcdefgX", "******efgX"},
		{"adjacent", []string{"ab"}, "ababab", "*********"},
		{"non-overlapping repeats", []string{"aa"}, "aaaaa", "******a"},
		{"start and end", []string{"foo", "bar"}, "foo middle bar", "*** middle ***"},
		{"whole text", []string{"foo"}, "FOO", "***"},
		{"emoji word", []string{"💣"}, "boom💣boom", "boom***boom"},
		{"emoji around", []string{"bad"}, "😀bad😀", "😀***😀"},
		{"unicode fold greek", []string{"σοφία"}, "ΣΟΦΊΑ!", "***!"},
		{"kelvin sign folds to k", []string{"kk"}, "\u212AK", "***"},
		{"fullwidth fold", []string{"ａｂ"}, "ＡＢc", "***c"},
		{"cyrillic", []string{"плохо"}, "Это ПЛОХО.", "Это ***."},
		{"invalid utf8 kept", []string{"bad"}, "\xffbad\xfe", "\xff***\xfe"},
		{"empty list", nil, "anything bad", "anything bad"},
		{"empty words ignored", []string{"", ""}, "text", "text"},
		{"empty text", []string{"bad"}, "", ""},
		{"prefix not complete", []string{"abc"}, "ab", "ab"},
		{"suffix word inside longer", []string{"abcde", "cd"}, "abcdX", "ab***X"},
		{"duplicate words", []string{"Bad", "bad", "BAD"}, "bad", "***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewKeywordFilter(tt.words, nil)
			got, changed := f.Filter(tt.in)
			if got != tt.want {
				t.Errorf("Filter(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if changed != (tt.in != tt.want) {
				t.Errorf("Filter(%q) changed = %v", tt.in, changed)
			}
			if ref := referenceReplace(tt.words, tt.in, DefaultReplacement); ref != tt.want {
				t.Errorf("reference(%q) = %q, want %q (test or reference wrong)", tt.in, ref, tt.want)
			}
		})
	}
}

func TestFilterReplacementOption(t *testing.T) {
	f := NewKeywordFilter([]string{"bad"}, &KeywordFilterOptions{Replacement: "[x]"})
	if got, _ := f.Filter("so bad"); got != "so [x]" {
		t.Fatalf("got %q", got)
	}
}

func TestFilterBody(t *testing.T) {
	f := NewKeywordFilter([]string{"bad", "坏", "_lcattrs", "lctype"}, nil)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			"typed text only",
			`{"_lctype":-1,"_lctext":"a bad 坏 day","_lcattrs":{"note":"bad"}}`,
			`{"_lctype":-1,"_lctext":"a *** *** day","_lcattrs":{"note":"bad"}}`,
		},
		{
			"typed keeps order and space",
			"{ \"_lcattrs\" : {\"bad\":1},\n \"_lctext\" :  \"BAD\" , \"_lctype\": -1 }",
			"{ \"_lcattrs\" : {\"bad\":1},\n \"_lctext\" :  \"***\" , \"_lctype\": -1 }",
		},
		{
			"typed escaped text",
			`{"_lctype":-1,"_lctext":"\u0062ad \"q\" <b>"}`,
			`{"_lctype":-1,"_lctext":"*** \"q\" <b>"}`,
		},
		{
			"typed clean untouched",
			`{"_lctype":-1,"_lctext":"\u0067ood"}`,
			`{"_lctype":-1,"_lctext":"\u0067ood"}`,
		},
		{
			"typed without text",
			`{"_lctype":-2,"_lcfile":{"url":"http://x/bad.png"}}`,
			`{"_lctype":-2,"_lcfile":{"url":"http://x/bad.png"}}`,
		},
		{
			"typed text not a string",
			`{"_lctype":-1,"_lctext":["bad"]}`,
			`{"_lctype":-1,"_lctext":["bad"]}`,
		},
		{
			"json without _lctype is text",
			`{"text":"bad"}`,
			`{"text":"***"}`,
		},
		{
			"invalid json is text",
			`{"_lctype":-1,"_lctext":"bad"`,
			`{"_***":-1,"_lctext":"***"`,
		},
		{
			"trailing data is text",
			`{"_lctype":-1,"_lctext":"x"} bad {}`,
			`{"_***":-1,"_lctext":"x"} *** {}`,
		},
		{"plain", "bad 坏", "*** ***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := f.FilterBody(tt.in)
			if got != tt.want {
				t.Errorf("FilterBody(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if changed != (tt.in != tt.want) {
				t.Errorf("changed = %v", changed)
			}
			if json.Valid([]byte(tt.in)) && !json.Valid([]byte(got)) {
				t.Errorf("valid JSON became invalid: %s", got)
			}
		})
	}
}

func TestMessageReceived(t *testing.T) {
	f := NewKeywordFilter([]string{"bad"}, nil)
	ctx := context.Background()
	res, err := f.MessageReceived(ctx, &realtime.MessageEvent{Message: &realtime.Message{Data: "so bad"}})
	if err != nil || res == nil || res.Data == nil {
		t.Fatalf("got %+v, %v", res, err)
	}
	if *res.Data != "so ***" || res.PatchCode != realtime.CodeKeywordFiltered || res.PatchReason != DefaultPatchReason || res.Drop {
		t.Fatalf("got %+v (data %q)", res, *res.Data)
	}
	res, err = f.MessageReceived(ctx, &realtime.MessageEvent{Message: &realtime.Message{Data: "fine"}})
	if res != nil || err != nil {
		t.Fatalf("clean message: got %+v, %v", res, err)
	}
	res, _ = f.MessageReceived(ctx, &realtime.MessageEvent{Message: &realtime.Message{Binary: []byte("bad")}})
	if res != nil {
		t.Fatalf("binary message rewritten: %+v", res)
	}
}

func TestMessageUpdate(t *testing.T) {
	f := NewKeywordFilter([]string{"bad"}, nil)
	ctx := context.Background()
	res, err := f.MessageUpdate(ctx, &realtime.MessageUpdateEvent{Patch: &realtime.Patch{Data: `{"_lctype":-1,"_lctext":"bad"}`}})
	if err != nil || res == nil || res.Data == nil || *res.Data != `{"_lctype":-1,"_lctext":"***"}` {
		t.Fatalf("edit: got %+v, %v", res, err)
	}
	res, _ = f.MessageUpdate(ctx, &realtime.MessageUpdateEvent{Patch: &realtime.Patch{Recall: true, Data: "bad"}})
	if res != nil {
		t.Fatalf("recall rewritten: %+v", res)
	}
}

func TestReadKeywordsAndReloadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "words.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("\uFEFF# comment\nbad\n\n  worse  \r\n#bad2\n坏话\n")
	f, err := LoadKeywordFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 3 {
		t.Fatalf("Len = %d, want 3", f.Len())
	}
	if got, _ := f.Filter("bad worse bad2 坏话"); got != "*** *** ***2 ***" {
		t.Fatalf("got %q", got)
	}
	write("bad2\n")
	if err := f.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Filter("bad worse bad2"); got != "bad worse ***" {
		t.Fatalf("after reload got %q", got)
	}
	os.Remove(path)
	if err := f.ReloadFile(); err == nil {
		t.Fatal("ReloadFile of a missing file: no error")
	}
	if got, _ := f.Filter("bad2"); got != "***" {
		t.Fatalf("failed reload dropped the list: %q", got)
	}
	if err := NewKeywordFilter(nil, nil).ReloadFile(); err != ErrNoKeywordFile {
		t.Fatalf("ReloadFile without file: %v", err)
	}
	if _, err := LoadKeywordFile(path, nil); err == nil {
		t.Fatal("LoadKeywordFile of a missing file: no error")
	}
}

// TestReloadConcurrent filters while the list is swapped: every result must
// be the whole work of one list (run with -race).
func TestReloadConcurrent(t *testing.T) {
	listA, listB := []string{"alpha"}, []string{"beta"}
	f := NewKeywordFilter(listA, nil)
	const text = "alpha beta"
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _ := f.Filter(text)
				if got != "*** beta" && got != "alpha ***" {
					t.Errorf("mixed result %q", got)
					return
				}
				if _, err := f.MessageReceived(context.Background(), &realtime.MessageEvent{Message: &realtime.Message{Data: text}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 500 {
		if i%2 == 0 {
			f.Reload(listB)
		} else {
			f.Reload(listA)
		}
	}
	close(stop)
	wg.Wait()
}

func TestFilterNoAllocWhenClean(t *testing.T) {
	f := NewKeywordFilter(benchWords(10000), nil)
	clean := "the quick brown fox jumps over the lazy dog, nothing to see here at all, move along please"
	if _, changed := f.Filter(clean); changed {
		t.Skip("generated words happen to match the clean text")
	}
	if n := testing.AllocsPerRun(100, func() { f.Filter(clean) }); n != 0 {
		t.Fatalf("Filter of clean ASCII text allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { f.FilterBody(clean) }); n != 0 {
		t.Fatalf("FilterBody of clean ASCII text allocates %v times", n)
	}
}

// TestFilterMatchesReference compares the automaton with a direct
// leftmost-longest scan on random words and texts over a small alphabet, so
// overlaps are frequent.
func TestFilterMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abcAB坏话ſKk\u212Aé É😀")
	randString := func(maxLen int) string {
		n := rng.IntN(maxLen + 1)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(20) == 0 {
			b.WriteByte(0xff) // invalid UTF-8 now and then
		}
		return b.String()
	}
	for i := range 3000 {
		words := make([]string, rng.IntN(8))
		for j := range words {
			words[j] = randString(4)
		}
		text := randString(30)
		f := NewKeywordFilter(words, nil)
		got, _ := f.Filter(text)
		if want := referenceReplace(words, text, DefaultReplacement); got != want {
			t.Fatalf("case %d: words %q text %q: got %q, want %q", i, words, text, got, want)
		}
	}
}

func FuzzKeywordFilter(f *testing.F) {
	f.Add("ab\nabc\nbc", "xxabcdbc")
	f.Add("坏话\nBAD", "你好坏话badword")
	f.Add("bad", `{"_lctype":-1,"_lctext":"bad","_lcattrs":{"a":"bad"}}`)
	f.Add("k\nſ", "K\u212As\xffS")
	f.Fuzz(func(t *testing.T, wordList, text string) {
		var words []string
		for w := range strings.SplitSeq(wordList, "\n") {
			// A word containing the replacement's rune could be
			// formed again by the replacement itself.
			if !strings.ContainsRune(w, '*') {
				words = append(words, w)
			}
		}
		f := NewKeywordFilter(words, nil)
		got, changed := f.Filter(text)
		if want := referenceReplace(words, text, DefaultReplacement); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if changed != (got != text) {
			t.Fatalf("changed = %v for %q -> %q", changed, text, got)
		}
		folded := foldString(got)
		for _, w := range words {
			if w != "" && strings.Contains(folded, foldString(w)) {
				t.Fatalf("output %q still contains %q", got, w)
			}
		}
		// Other JSON is plain text to the filter, so only a typed
		// message is sure to stay valid JSON, with the same members.
		body, _ := f.FilterBody(text)
		var in map[string]json.RawMessage
		if json.Unmarshal([]byte(text), &in) == nil && in["_lctype"] != nil {
			var out map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatalf("FilterBody made typed message %q invalid: %q", text, body)
			}
			for k, v := range in {
				if k != "_lctext" && string(out[k]) != string(v) {
					t.Fatalf("FilterBody changed %q: %q -> %q", k, text, body)
				}
			}
		}
	})
}

// referenceReplace is the specification: at each rune from the left, the
// longest word (case-folded) starting there is replaced, else the rune is
// kept as it was.
func referenceReplace(words []string, text, repl string) string {
	var folded [][]rune
	for _, w := range words {
		if w != "" {
			folded = append(folded, []rune(foldString(w)))
		}
	}
	var offsets []int
	var runes []rune
	for i, r := range text {
		offsets = append(offsets, i)
		runes = append(runes, foldTables().fold(r))
	}
	offsets = append(offsets, len(text))
	var b strings.Builder
	for pos := 0; pos < len(runes); {
		best := 0
		for _, w := range folded {
			if len(w) > best && pos+len(w) <= len(runes) && equalRunes(runes[pos:pos+len(w)], w) {
				best = len(w)
			}
		}
		if best == 0 {
			b.WriteString(text[offsets[pos]:offsets[pos+1]])
			pos++
			continue
		}
		b.WriteString(repl)
		pos += best
	}
	return b.String()
}

func equalRunes(a, b []rune) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func foldString(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(foldTables().fold(r))
	}
	return b.String()
}

func TestFoldTableAgreesWithCanonicalFold(t *testing.T) {
	ft := foldTables()
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if got, want := ft.fold(r), canonicalFold(r); got != want {
			t.Fatalf("fold(%U) = %U, want %U", r, got, want)
		}
	}
}
