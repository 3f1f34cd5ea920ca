package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A record is one JSON value read from a source that looks like an
// object, with where it came from. raw is only valid during the callback
// it is passed to (JSON lines are read into a reused buffer); whether it
// is well-formed is for the callback to find out (decode).
type record struct {
	source string
	pos    int // line number (JSON lines) or element number (arrays), from 1
	raw    []byte
}

// decode returns the record's fields.
func (r *record) decode() (map[string]json.RawMessage, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(r.raw, &o); err != nil {
		return nil, err
	}
	return o, nil
}

func (r *record) where() string {
	return fmt.Sprintf("%s:%d", r.source, r.pos)
}

// maxLine is the longest JSON line read; longer ones are reported as
// malformed.
const maxLine = 16 << 20

// readRecords reads the JSON objects of src in any of the shapes LeanCloud
// exports and REST queries produce, calling obj for each object and bad
// for each value that is not one (malformed JSON, or not an object):
//
//   - JSON lines: one object a line (blank lines are skipped). A bad line
//     is reported and the rest read on.
//   - a JSON array of objects, or several arrays one after the other
//     (saved pages of a history query);
//   - {"results": [...]} (a REST query's answer, LeanCloud's console
//     export).
//
// The shape is told from the first line: a complete JSON value on it
// means JSON lines (a one-line {"results": [...]} or array is unwrapped);
// anything else is one JSON document. In a document, a syntax error ends
// the reading of that source: it is reported once, with the records read
// before it kept.
func readRecords(name string, r io.Reader, obj func(record) error, bad func(pos int, detail string)) error {
	br := bufio.NewReaderSize(r, peekMax)
	lines, long, err := peekLines(br, 2)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if len(lines) == 0 {
		if len(long) == 0 {
			return nil // empty source
		}
		// The first line does not fit in the window: a one-line array or
		// wrapper, or JSON lines with a long first one.
		if long[0] == '[' || bytes.HasPrefix(bytes.TrimLeft(long[1:], " \t\r\n"), []byte(`"results"`)) {
			return readDocument(name, br, obj, bad)
		}
		return readLines(name, br, obj, bad)
	}
	// JSON lines when one of the first two lines is a whole object (the
	// first may be a malformed line); a pretty-printed document has no
	// such line there.
	if first := lines[0]; first[0] == '[' || (!json.Valid(first) && bytes.Contains(first, []byte(`"results"`))) {
		return readDocument(name, br, obj, bad)
	}
	for _, l := range lines {
		if l[0] == '{' && json.Valid(l) && !isResultsWrapper(l) {
			return readLines(name, br, obj, bad)
		}
	}
	return readDocument(name, br, obj, bad)
}

// peekMax is how far readRecords looks ahead to tell the shape (a first
// line longer than that is read as a document).
const peekMax = 64 << 10

// peekLines returns up to n first non-blank lines (trimmed) that end
// within peekMax bytes, without consuming input. When the first non-blank
// line does not end there, lines is empty and long is its start.
func peekLines(br *bufio.Reader, n int) (lines [][]byte, long []byte, err error) {
	b, err := br.Peek(peekMax)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, nil, err
	}
	for len(b) > 0 && len(lines) < n {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the window.
			if len(lines) == 0 {
				long = bytes.TrimLeft(line, " \t\r\n")
			}
			break
		} else {
			b = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			lines = append(lines, t)
		}
	}
	return lines, long, nil
}

// isResultsWrapper tells a one-line {"results": [...]} (with count, or
// the cursor of LeanCloud's scan API) from a record.
func isResultsWrapper(line []byte) bool {
	var w map[string]json.RawMessage
	if json.Unmarshal(line, &w) != nil {
		return false
	}
	res := bytes.TrimSpace(w["results"])
	_, conv := w["objectId"]
	_, msg := w["msg-id"]
	return len(res) > 0 && res[0] == '[' && !conv && !msg
}

func readLines(name string, br *bufio.Reader, obj func(record) error, bad func(int, string)) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 1<<16), maxLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' {
			bad(line, describeJSONError(b, nil))
			continue
		}
		if err := obj(record{source: name, pos: line, raw: b}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			bad(line+1, fmt.Sprintf("line longer than %d bytes; the rest of the file is not read", maxLine))
			return nil
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// describeJSONError says why b is not a JSON object (err from decoding
// it, nil when it is well-formed JSON of another kind or not JSON at all).
func describeJSONError(b []byte, err error) string {
	if err == nil {
		if json.Valid(b) {
			return "not a JSON object"
		}
		err = json.Unmarshal(b, new(any))
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "not a JSON object"
	}
	snippet := string(b)
	if len(snippet) > 60 {
		snippet = snippet[:60] + "..."
	}
	return fmt.Sprintf("malformed JSON (%v): %q", err, snippet)
}

// readDocument streams the elements of arrays, or of the "results" array
// of a wrapper object, with a json.Decoder. A syntax error is reported
// once and ends the reading of the source.
func readDocument(name string, r io.Reader, obj func(record) error, bad func(int, string)) error {
	dec := json.NewDecoder(r)
	pos := 0 // of the last value read
	fail := func(err error) error {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, new(*json.UnmarshalTypeError)) {
			bad(pos+1, fmt.Sprintf("malformed JSON (%v); the rest of the file is not read", err))
			return errStop
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	elements := func() error {
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fail(err)
			}
			pos++
			if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
				bad(pos, "not a JSON object")
				continue
			}
			if err := obj(record{source: name, pos: pos, raw: raw}); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return fail(err)
		}
		return nil
	}
	// wrapper reads {"results": [...]} after its '{'; other keys (count,
	// cursor) are skipped.
	wrapper := func() error {
		found := false
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return fail(err)
			}
			if k, _ := key.(string); k == "results" && !found {
				t, err := dec.Token()
				if err != nil {
					return fail(err)
				}
				if t != json.Delim('[') {
					bad(pos+1, `"results" is not an array`)
					return errStop
				}
				found = true
				if err := elements(); err != nil {
					return err
				}
				continue
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return fail(err)
		}
		if !found {
			bad(pos+1, `a JSON object without "results"; expected JSON lines, an array or {"results": [...]}`)
		}
		return nil
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil {
			switch tok {
			case json.Delim('['):
				err = elements()
			case json.Delim('{'):
				err = wrapper()
			default:
				bad(pos+1, fmt.Sprintf("unexpected JSON value %v; expected JSON lines, an array or {\"results\": [...]}", tok))
				err = errStop
			}
		} else {
			err = fail(err)
		}
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errStop ends readDocument after a reported error.
var errStop = errors.New("stop reading")

// field decoders: each reports a type error as a reason detail.

func getString(o map[string]json.RawMessage, key string) (string, bool, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("field %q is not a string", key)
	}
	return s, true, nil
}

func getBool(o map[string]json.RawMessage, key string) (bool, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("field %q is not a boolean", key)
	}
	return b, nil
}

func getInt(o map[string]json.RawMessage, key string) (int64, bool, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, true, fmt.Errorf("field %q is not a number", key)
	}
	v, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil || f != float64(int64(f)) {
			return 0, true, fmt.Errorf("field %q is not an integer", key)
		}
		v = int64(f)
	}
	return v, true, nil
}

func getStrings(o map[string]json.RawMessage, key string) ([]string, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("field %q is not an array of strings", key)
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool {
	return strings.TrimSpace(string(raw)) == "null"
}
