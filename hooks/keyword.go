package hooks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/leanhub/realtime"
)

// DefaultReplacement replaces each filtered word unless
// KeywordFilterOptions.Replacement says otherwise (LeanCloud's choice).
const DefaultReplacement = "***"

// DefaultPatchReason is the patch reason sent with CodeKeywordFiltered.
const DefaultPatchReason = "message contains filtered keywords"

// KeywordFilterOptions configures a KeywordFilter. A nil *KeywordFilterOptions
// or the zero value uses the defaults.
type KeywordFilterOptions struct {
	// Replacement replaces each matched word; "" means DefaultReplacement.
	Replacement string
	// PatchReason is the detail of the MESSAGE_UPDATE the sender gets for a
	// filtered message; "" means DefaultPatchReason.
	PatchReason string
}

// KeywordFilter replaces forbidden words in message bodies, LeanCloud's
// built-in keyword filter as a hook. It implements
// realtime.MessageReceivedHook (new messages are rewritten with patch code
// realtime.CodeKeywordFiltered, -4408) and realtime.MessageUpdateHook (the
// new body of an edit is rewritten).
//
// Matching ignores case (Unicode simple case folding) and finds words
// anywhere, not only between spaces, as Chinese and Japanese text has none.
// Overlapping matches are resolved leftmost-longest: with the words "ab",
// "abc" and "bc", "abcd" becomes "***d". Text outside the matches is kept
// byte for byte. For a typed message body (a JSON object with "_lctype"),
// only the "_lctext" string is filtered, the rest of the JSON is untouched;
// any other body is filtered as plain text.
//
// A KeywordFilter is safe for concurrent use. Reload and ReloadFile swap in
// a new word list atomically: filtering never waits for them, and a message
// is filtered wholly by the old or wholly by the new list.
type KeywordFilter struct {
	m           atomic.Pointer[matcher]
	replacement string
	patchReason string
	path        string // set by LoadKeywordFile, for ReloadFile
}

var (
	_ realtime.MessageReceivedHook = (*KeywordFilter)(nil)
	_ realtime.MessageUpdateHook   = (*KeywordFilter)(nil)
)

// NewKeywordFilter returns a filter for words. Empty words are ignored;
// an empty list filters nothing. Building takes time proportional to the
// total length of the words (a few milliseconds for 10,000 words).
func NewKeywordFilter(words []string, opts *KeywordFilterOptions) *KeywordFilter {
	f := &KeywordFilter{replacement: DefaultReplacement, patchReason: DefaultPatchReason}
	if opts != nil {
		if opts.Replacement != "" {
			f.replacement = opts.Replacement
		}
		if opts.PatchReason != "" {
			f.patchReason = opts.PatchReason
		}
	}
	f.Reload(words)
	return f
}

// LoadKeywordFile returns a filter for the words in the file at path (see
// ReadKeywords for the format). ReloadFile reads the same path again.
func LoadKeywordFile(path string, opts *KeywordFilterOptions) (*KeywordFilter, error) {
	words, err := readKeywordFile(path)
	if err != nil {
		return nil, err
	}
	f := NewKeywordFilter(words, opts)
	f.path = path
	return f, nil
}

// ReadKeywords reads a word list: one word per line, surrounding white space
// trimmed, blank lines and lines starting with '#' ignored. A file may be
// UTF-8 with or without a byte order mark.
func ReadKeywords(r io.Reader) ([]string, error) {
	var words []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			line = strings.TrimPrefix(line, "\uFEFF")
			first = false
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words = append(words, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hooks: reading keywords: %w", err)
	}
	return words, nil
}

func readKeywordFile(path string) ([]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hooks: keyword file: %w", err)
	}
	defer file.Close()
	words, err := ReadKeywords(file)
	if err != nil {
		return nil, fmt.Errorf("hooks: keyword file %s: %w", path, err)
	}
	return words, nil
}

// Reload replaces the word list. Messages being filtered finish with the
// list they started with.
func (f *KeywordFilter) Reload(words []string) {
	f.m.Store(newMatcher(words))
}

// ErrNoKeywordFile is returned by ReloadFile for a filter that was not made
// by LoadKeywordFile.
var ErrNoKeywordFile = errors.New("hooks: keyword filter has no file to reload")

// ReloadFile reads the file given to LoadKeywordFile again and replaces the
// word list. On error the current list stays in use.
func (f *KeywordFilter) ReloadFile() error {
	if f.path == "" {
		return ErrNoKeywordFile
	}
	words, err := readKeywordFile(f.path)
	if err != nil {
		return err
	}
	f.Reload(words)
	return nil
}

// Len returns the number of distinct words (after case folding) in use.
func (f *KeywordFilter) Len() int { return f.m.Load().words }

// Filter returns text with every listed word replaced, and whether any was.
// It does not allocate when nothing matches.
func (f *KeywordFilter) Filter(text string) (string, bool) {
	return f.m.Load().replace(text, f.replacement)
}

// FilterBody filters a message body: only the "_lctext" string of a typed
// message (a JSON object with an "_lctype" member), the whole text of
// anything else.
func (f *KeywordFilter) FilterBody(body string) (string, bool) {
	m := f.m.Load()
	if m.words == 0 {
		return body, false
	}
	if looksLikeObject(body) {
		if out, changed, typed := filterTyped(m, body, f.replacement); typed {
			return out, changed
		}
	}
	return m.replace(body, f.replacement)
}

// MessageReceived rewrites a message containing listed words; the sender is
// told with patch code realtime.CodeKeywordFiltered. Binary messages pass.
func (f *KeywordFilter) MessageReceived(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
	if ev == nil || ev.Message == nil || ev.Message.Binary != nil {
		return nil, nil
	}
	out, changed := f.FilterBody(ev.Message.Data)
	if !changed {
		return nil, nil
	}
	return &realtime.MessageReceivedResult{
		Data:        &out,
		PatchCode:   realtime.CodeKeywordFiltered,
		PatchReason: f.patchReason,
	}, nil
}

// MessageUpdate rewrites the new body of an edit containing listed words.
// Recalls and binary edits pass.
func (f *KeywordFilter) MessageUpdate(ctx context.Context, ev *realtime.MessageUpdateEvent) (*realtime.MessageUpdateResult, error) {
	if ev == nil || ev.Patch == nil || ev.Patch.Recall || ev.Patch.Binary != nil {
		return nil, nil
	}
	out, changed := f.FilterBody(ev.Patch.Data)
	if !changed {
		return nil, nil
	}
	return &realtime.MessageUpdateResult{Data: &out}, nil
}

// looksLikeObject is a cheap test that keeps plain text off the JSON path.
func looksLikeObject(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n")
	return strings.HasPrefix(s, "{") && strings.HasSuffix(strings.TrimRight(s, " \t\r\n"), "}")
}

// filterTyped filters the top-level "_lctext" string(s) of body if body is a
// typed message: a single JSON object with an "_lctype" member. typed is
// false for anything else, which the caller filters as plain text. Only the
// bytes of a changed "_lctext" value are rewritten; other members, their
// order and the white space stay as they were.
func filterTyped(m *matcher, body, repl string) (out string, changed, typed bool) {
	type span struct{ start, end int }
	var texts []span
	dec := json.NewDecoder(strings.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", false, false
		}
		switch key {
		case "_lctype":
			typed = true
		case "_lctext":
			// InputOffset is the end of the value just decoded; raw is
			// the value's exact bytes (leading space excluded).
			end := int(dec.InputOffset())
			start := end - len(raw)
			if len(raw) > 0 && raw[0] == '"' && start >= 0 && body[start:end] == string(raw) {
				texts = append(texts, span{start, end})
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return "", false, false
	}
	if _, err := dec.Token(); err != io.EOF { // nothing after the object
		return "", false, false
	}
	if !typed {
		return "", false, false
	}
	var b strings.Builder
	last := 0
	for _, t := range texts {
		var text string
		if err := json.Unmarshal([]byte(body[t.start:t.end]), &text); err != nil {
			continue
		}
		filtered, ok := m.replace(text, repl)
		if !ok {
			continue
		}
		enc, err := marshalString(filtered)
		if err != nil {
			continue
		}
		b.WriteString(body[last:t.start])
		b.WriteString(enc)
		last = t.end
		changed = true
	}
	if !changed {
		return body, false, true
	}
	b.WriteString(body[last:])
	return b.String(), true, true
}

// marshalString encodes s as a JSON string without escaping <, > and &,
// which would be valid but needlessly unlike what the SDKs send.
func marshalString(s string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
