// Package convquery parses the conversation query language of the LeanCloud
// SDKs (the `where` JSON of a conv query; LeanCloud's REST API v2 takes the
// same in GET /1.2/rtm/conversations?where=...) into a realtime.Filter,
// with limits on everything that costs work: input size, nesting depth,
// number of terms, list lengths, string sizes, regular expression size and
// complexity. Anything over a limit, and anything the language does not
// have, is refused with realtime.ErrConvQueryFailed (4310) and a reason.
//
// The input is read by a streaming JSON tokenizer and the tree is built as
// tokens arrive, so a limit is enforced as soon as it is crossed: a
// 5,000-deep $and is refused after reading a few dozen tokens, before the
// rest of it is even looked at, and nothing is ever decoded into a generic
// JSON value. Field names are resolved and checked by
// realtime.ParseFieldKey; values are typed per field (Filter documents
// them) and checked by Filter.Validate.
//
//	f, err := convquery.Parse([]byte(`{"attr.type":"private","lm":{"$gt":{"__type":"Date","iso":"2024-01-01T00:00:00.000Z"}}}`), nil)
//
// The package has no SQL: stores translate the Filter.
package convquery

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"github.com/leanhub/realtime"
)

// Limits bound what Parse accepts. Zero fields take the value of
// DefaultLimits.
type Limits struct {
	// MaxBytes is the largest where document, in bytes.
	MaxBytes int
	// MaxDepth is how deep $and and $or may nest: the where object is at
	// depth 1, the objects of its $and at depth 2, and so on.
	MaxDepth int
	// MaxTerms is the most conditions (one per operator of a field, and
	// one per $and or $or with each of its elements) a where may have.
	MaxTerms int
	// MaxListValues is the longest $in, $nin or $all list (the SDK's
	// getConversations asks for up to 999 ids at once).
	MaxListValues int
	// MaxValues is the most values all lists of a where may have together.
	MaxValues int
	// MaxStringBytes is the longest string value.
	MaxStringBytes int
	// MaxRegexBytes is the longest $regex pattern.
	MaxRegexBytes int
	// MaxRegexInsts bounds the size of a compiled pattern (instructions of
	// Go's regexp program: about one per literal character, more for
	// repetitions, which are expanded).
	MaxRegexInsts int
	// MaxRegexRanges bounds the character ranges of a pattern's classes
	// (\pL alone has hundreds).
	MaxRegexRanges int
}

// DefaultLimits are the limits Parse uses for zero Limits fields.
var DefaultLimits = Limits{
	MaxBytes:       64 << 10,
	MaxDepth:       8,
	MaxTerms:       100,
	MaxListValues:  1000,
	MaxValues:      2000,
	MaxStringBytes: 1024,
	MaxRegexBytes:  256,
	MaxRegexInsts:  1000,
	MaxRegexRanges: 256,
}

func (l *Limits) withDefaults() Limits {
	var o Limits
	if l != nil {
		o = *l
	}
	d := DefaultLimits
	for _, f := range []struct {
		v *int
		d int
	}{
		{&o.MaxBytes, d.MaxBytes}, {&o.MaxDepth, d.MaxDepth}, {&o.MaxTerms, d.MaxTerms},
		{&o.MaxListValues, d.MaxListValues}, {&o.MaxValues, d.MaxValues}, {&o.MaxStringBytes, d.MaxStringBytes},
		{&o.MaxRegexBytes, d.MaxRegexBytes}, {&o.MaxRegexInsts, d.MaxRegexInsts}, {&o.MaxRegexRanges, d.MaxRegexRanges},
	} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	return o
}

// Parse parses a where document. It returns nil, nil for a document
// without conditions (empty, null or {}), which matches every
// conversation. Errors are realtime.ErrConvQueryFailed with a reason.
func Parse(where []byte, lim *Limits) (*realtime.Filter, error) {
	p := newParser(where, lim)
	return p.parse()
}

// parser holds the tokenizer and the work counters of one Parse.
type parser struct {
	lim    Limits
	input  []byte
	dec    *json.Decoder
	tokens int // tokens read: the work done
	terms  int
	values int
}

func newParser(where []byte, lim *Limits) *parser {
	return &parser{lim: lim.withDefaults(), input: where}
}

// refuse is a 4310 error; the detail is safe to show to the client.
func refuse(format string, args ...any) error {
	return realtime.ErrConvQueryFailed.WithDetail("where: "+format, args...)
}

func (p *parser) parse() (*realtime.Filter, error) {
	in := bytes.TrimSpace(p.input)
	if len(in) > p.lim.MaxBytes {
		return nil, refuse("larger than %d bytes", p.lim.MaxBytes)
	}
	if len(in) == 0 || string(in) == "null" {
		return nil, nil
	}
	if in[0] != '{' {
		return nil, refuse("must be a JSON object")
	}
	p.dec = json.NewDecoder(bytes.NewReader(in))
	p.dec.UseNumber()
	f, err := p.object(1)
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, refuse("unexpected data after the object")
	}
	return f, nil
}

// token reads the next token; malformed JSON is refused.
func (p *parser) token() (json.Token, error) {
	p.tokens++
	t, err := p.dec.Token()
	if err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, refuse("malformed JSON at offset %d", syn.Offset)
		}
		return nil, refuse("malformed JSON")
	}
	return t, nil
}

func (p *parser) delim(want json.Delim) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return refuse("expected %q at offset %d", string(want), p.dec.InputOffset())
	}
	return nil
}

// key reads an object key.
func (p *parser) key() (string, error) {
	t, err := p.token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", refuse("malformed JSON")
	}
	return k, nil
}

// term counts one condition against MaxTerms.
func (p *parser) term() error {
	p.terms++
	if p.terms > p.lim.MaxTerms {
		return refuse("more than %d terms", p.lim.MaxTerms)
	}
	return nil
}

// object parses a where object (the document, or an element of $and/$or)
// at the given depth; nil means no condition.
func (p *parser) object(depth int) (*realtime.Filter, error) {
	if depth > p.lim.MaxDepth {
		return nil, refuse("$and/$or nested deeper than %d", p.lim.MaxDepth)
	}
	if err := p.delim('{'); err != nil {
		return nil, err
	}
	var conds []*realtime.Filter
	seen := map[string]bool{}
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, refuse("duplicate key %q", clip(k))
		}
		seen[k] = true
		switch k {
		case "$and", "$or":
			f, err := p.combination(k, depth)
			if err != nil {
				return nil, err
			}
			if f != nil { // nil: an $or with an empty alternative, or an empty $and
				conds = append(conds, f)
			}
		default:
			field, path, err := realtime.ParseFieldKey(k)
			if err != nil {
				return nil, refuse("%s", detail(err))
			}
			fs, err := p.condition(field, path)
			if err != nil {
				return nil, err
			}
			conds = append(conds, fs...)
		}
	}
	if err := p.delim('}'); err != nil {
		return nil, err
	}
	return and(conds), nil
}

// combination parses the array of an $and or $or; nil means no condition.
func (p *parser) combination(op string, depth int) (*realtime.Filter, error) {
	if err := p.term(); err != nil {
		return nil, err
	}
	if err := p.delim('['); err != nil {
		return nil, refuse("%s takes an array of conditions", op)
	}
	var subs []*realtime.Filter
	n := 0
	orTrue := false
	for p.dec.More() {
		if err := p.term(); err != nil {
			return nil, err
		}
		n++
		f, err := p.object(depth + 1)
		if err != nil {
			return nil, err
		}
		if f == nil {
			orTrue = orTrue || op == "$or"
			continue
		}
		subs = append(subs, f)
	}
	if err := p.delim(']'); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, refuse("%s needs at least one condition", op)
	}
	if op == "$and" {
		return and(subs), nil
	}
	if orTrue || len(subs) == 0 {
		return nil, nil // one alternative has no condition: always true
	}
	if len(subs) == 1 {
		return subs[0], nil
	}
	return &realtime.Filter{Op: realtime.FilterOr, Filters: subs}, nil
}

func and(conds []*realtime.Filter) *realtime.Filter {
	switch len(conds) {
	case 0:
		return nil
	case 1:
		return conds[0]
	}
	return &realtime.Filter{Op: realtime.FilterAnd, Filters: conds}
}

// value is a JSON value of the language: string, float64 (from a
// json.Number, so integers are known), bool, nil, time.Time, or a list.
type value struct {
	v       any
	integer bool // a number without fraction or exponent
	list    []any
	isList  bool
}

// condition parses what follows a field key: an operator object, a typed
// value ({"__type":"Date",...}), a list (equality to a set), or a scalar.
func (p *parser) condition(field realtime.FilterField, path []string) ([]*realtime.Filter, error) {
	t, err := p.token()
	if err != nil {
		return nil, err
	}
	leaf := func(op realtime.FilterOp) *realtime.Filter {
		return &realtime.Filter{Op: op, Field: field, Path: path}
	}
	name := fieldName(field, path)
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '[':
			if err := p.term(); err != nil {
				return nil, err
			}
			list, err := p.listRest(name)
			if err != nil {
				return nil, err
			}
			if field != realtime.FieldMembers && field != realtime.FieldMuted {
				return nil, refuse("%s: equality to an array is not supported (use $all and $size)", name)
			}
			// m and mu are sets: equality to a list is the same set.
			set := dedup(list)
			all, size := leaf(realtime.FilterAll), leaf(realtime.FilterSize)
			all.Values, size.Size = set, len(set)
			if err := p.checkLeaves(name, all, size); err != nil {
				return nil, err
			}
			return []*realtime.Filter{all, size}, nil
		case '{':
			if !p.dec.More() {
				return nil, refuse("%s: empty condition", name)
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(k, "$") {
				if err := p.term(); err != nil {
					return nil, err
				}
				v, err := p.typedRest(name, k)
				if err != nil {
					return nil, err
				}
				f := leaf(realtime.FilterEq)
				f.Value = coerce(field, v)
				return []*realtime.Filter{f}, p.checkLeaves(name, f)
			}
			return p.operators(field, path, name, k)
		}
		return nil, refuse("malformed JSON")
	}
	if err := p.term(); err != nil {
		return nil, err
	}
	v, err := p.scalar(name, t)
	if err != nil {
		return nil, err
	}
	f := leaf(realtime.FilterEq)
	f.Value = coerce(field, v)
	return []*realtime.Filter{f}, p.checkLeaves(name, f)
}

// operators parses an operator object whose first key, first, was read.
func (p *parser) operators(field realtime.FilterField, path []string, name, first string) ([]*realtime.Filter, error) {
	var out []*realtime.Filter
	var pattern, options *string
	seen := map[string]bool{}
	k := first
	for {
		if seen[k] {
			return nil, refuse("%s: duplicate operator %s", name, clip(k))
		}
		seen[k] = true
		if k != "$options" {
			if err := p.term(); err != nil {
				return nil, err
			}
		}
		f := &realtime.Filter{Field: field, Path: path}
		switch k {
		case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			f.Op = map[string]realtime.FilterOp{"$eq": realtime.FilterEq, "$ne": realtime.FilterNe,
				"$gt": realtime.FilterGt, "$gte": realtime.FilterGte, "$lt": realtime.FilterLt, "$lte": realtime.FilterLte}[k]
			v, err := p.value(name)
			if err != nil {
				return nil, err
			}
			if v.isList {
				return nil, refuse("%s: %s takes a single value", name, k)
			}
			f.Value = coerce(field, v)
		case "$in", "$nin", "$all":
			f.Op = map[string]realtime.FilterOp{"$in": realtime.FilterIn, "$nin": realtime.FilterNin, "$all": realtime.FilterAll}[k]
			v, err := p.value(name)
			if err != nil {
				return nil, err
			}
			if !v.isList {
				return nil, refuse("%s: %s takes an array", name, k)
			}
			f.Values = make([]any, len(v.list))
			for i, x := range v.list {
				f.Values[i] = coerce(field, x.(value))
			}
		case "$exists":
			v, err := p.value(name)
			if err != nil {
				return nil, err
			}
			b, ok := v.v.(bool)
			if !ok || v.isList {
				return nil, refuse("%s: $exists takes true or false", name)
			}
			f.Op, f.Value = realtime.FilterExists, b
		case "$size":
			v, err := p.value(name)
			if err != nil {
				return nil, err
			}
			n, ok := v.v.(float64)
			if !ok || !v.integer || n < 0 || n > math.MaxInt32 {
				return nil, refuse("%s: $size takes a whole number >= 0", name)
			}
			f.Op, f.Size = realtime.FilterSize, int(n)
		case "$regex", "$options":
			v, err := p.value(name)
			if err != nil {
				return nil, err
			}
			s, ok := v.v.(string)
			if !ok || v.isList {
				return nil, refuse("%s: %s takes a string", name, k)
			}
			if k == "$regex" {
				pattern = &s
			} else {
				options = &s
			}
			f = nil // built below, once both are known
		default:
			return nil, refuse("%s: unsupported operator %s", name, clip(k))
		}
		if f != nil {
			if err := p.checkLeaves(name, f); err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		if !p.dec.More() {
			break
		}
		var err error
		if k, err = p.key(); err != nil {
			return nil, err
		}
	}
	if err := p.delim('}'); err != nil {
		return nil, err
	}
	if options != nil && pattern == nil {
		return nil, refuse("%s: $options without $regex", name)
	}
	if pattern != nil {
		re, err := p.regex(name, *pattern, options)
		if err != nil {
			return nil, err
		}
		f := &realtime.Filter{Op: realtime.FilterRegex, Field: field, Path: path, Regex: re}
		if err := p.checkLeaves(name, f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// checkLeaves validates leaves with realtime's typing rules.
func (p *parser) checkLeaves(name string, fs ...*realtime.Filter) error {
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			return refuse("%s", detail(err))
		}
	}
	return nil
}

// regex compiles a $regex with its $options, within the limits.
func (p *parser) regex(name, pattern string, options *string) (*regexp.Regexp, error) {
	if len(pattern) > p.lim.MaxRegexBytes {
		return nil, refuse("%s: $regex longer than %d bytes", name, p.lim.MaxRegexBytes)
	}
	flags := ""
	if options != nil {
		for _, o := range *options {
			switch o {
			case 'i', 'm', 's':
				if !strings.ContainsRune(flags, o) {
					flags += string(o)
				}
			default:
				return nil, refuse("%s: unsupported $options %q (i, m and s are)", name, clip(string(o)))
			}
		}
	}
	full := pattern
	if flags != "" {
		full = "(?" + flags + ")" + pattern
	}
	re, err := syntax.Parse(full, syntax.Perl)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, refuse("%s: invalid $regex: %s", name, se.Code)
		}
		return nil, refuse("%s: invalid $regex", name)
	}
	if n := classRanges(re); n > p.lim.MaxRegexRanges {
		return nil, refuse("%s: $regex too complex (%d character ranges, at most %d)", name, n, p.lim.MaxRegexRanges)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil || len(prog.Inst) > p.lim.MaxRegexInsts {
		return nil, refuse("%s: $regex too complex (at most %d instructions)", name, p.lim.MaxRegexInsts)
	}
	compiled, err := regexp.Compile(full)
	if err != nil {
		return nil, refuse("%s: invalid $regex", name)
	}
	return compiled, nil
}

// classRanges counts the character ranges of re's classes.
func classRanges(re *syntax.Regexp) int {
	n := len(re.Rune) / 2
	if re.Op != syntax.OpCharClass {
		n = 0
	}
	for _, s := range re.Sub {
		n += classRanges(s)
	}
	return n
}

// value reads one value: a scalar, a typed object or a list of those.
func (p *parser) value(name string) (value, error) {
	t, err := p.token()
	if err != nil {
		return value{}, err
	}
	if d, ok := t.(json.Delim); ok {
		switch d {
		case '[':
			list, err := p.listRest(name)
			if err != nil {
				return value{}, err
			}
			return value{list: list, isList: true}, nil
		case '{':
			if !p.dec.More() {
				return value{}, refuse("%s: objects are not values", name)
			}
			k, err := p.key()
			if err != nil {
				return value{}, err
			}
			return p.typedRest(name, k)
		}
		return value{}, refuse("malformed JSON")
	}
	return p.scalar(name, t)
}

// listRest reads the values of a list whose '[' was read.
func (p *parser) listRest(name string) ([]any, error) {
	var list []any
	for p.dec.More() {
		if len(list) >= p.lim.MaxListValues {
			return nil, refuse("%s: lists have at most %d values", name, p.lim.MaxListValues)
		}
		p.values++
		if p.values > p.lim.MaxValues {
			return nil, refuse("more than %d values in lists", p.lim.MaxValues)
		}
		t, err := p.token()
		if err != nil {
			return nil, err
		}
		var v value
		if d, ok := t.(json.Delim); ok {
			if d != '{' || !p.dec.More() {
				return nil, refuse("%s: lists hold strings, numbers, booleans, null or dates", name)
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			if v, err = p.typedRest(name, k); err != nil {
				return nil, err
			}
		} else if v, err = p.scalar(name, t); err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	if err := p.delim(']'); err != nil {
		return nil, err
	}
	return list, nil
}

// scalar converts a scalar token.
func (p *parser) scalar(name string, t json.Token) (value, error) {
	switch t := t.(type) {
	case string:
		if len(t) > p.lim.MaxStringBytes {
			return value{}, refuse("%s: strings have at most %d bytes", name, p.lim.MaxStringBytes)
		}
		return value{v: t}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(f, 0) {
			return value{}, refuse("%s: number out of range", name)
		}
		return value{v: f, integer: !strings.ContainsAny(string(t), ".eE")}, nil
	case bool:
		return value{v: t}, nil
	case nil:
		return value{v: nil}, nil
	}
	return value{}, refuse("malformed JSON")
}

// typedRest reads the rest of a LeanCloud typed value object whose '{'
// and first key were read. Only dates are supported:
// {"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}.
func (p *parser) typedRest(name, first string) (value, error) {
	var typ, iso *string
	k := first
	for {
		if k != "__type" && k != "iso" {
			return value{}, refuse("%s: objects are not values (dates are {\"__type\":\"Date\",\"iso\":...})", name)
		}
		t, err := p.token()
		if err != nil {
			return value{}, err
		}
		s, ok := t.(string)
		if !ok || (k == "__type" && typ != nil) || (k == "iso" && iso != nil) {
			return value{}, refuse("%s: malformed date", name)
		}
		if k == "__type" {
			typ = &s
		} else {
			iso = &s
		}
		if !p.dec.More() {
			break
		}
		if k, err = p.key(); err != nil {
			return value{}, err
		}
	}
	if err := p.delim('}'); err != nil {
		return value{}, err
	}
	if typ == nil || *typ != "Date" {
		return value{}, refuse("%s: unsupported typed value (only Date is)", name)
	}
	if iso == nil || len(*iso) > 64 {
		return value{}, refuse("%s: malformed date", name)
	}
	t, err := time.Parse(time.RFC3339Nano, *iso)
	if err != nil {
		return value{}, refuse("%s: malformed date %q", name, clip(*iso))
	}
	return value{v: time.UnixMilli(t.UnixMilli())}, nil
}

// coerce gives a value the type its field takes where the language allows
// two spellings: dates of built-in date fields may be milliseconds.
func coerce(field realtime.FilterField, v value) any {
	switch field {
	case realtime.FieldLastMessageAt, realtime.FieldCreatedAt, realtime.FieldUpdatedAt:
		if ms, ok := v.v.(float64); ok && v.integer && math.Abs(ms) <= 8.64e15 {
			return time.UnixMilli(int64(ms))
		}
	}
	return v.v
}

// dedup returns the distinct values of a list, in order.
func dedup(list []any) []any {
	var out []any
	seen := map[any]bool{}
	for _, x := range list {
		v := x.(value).v
		if k, ok := v.(string); ok {
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, v)
	}
	return out
}

func fieldName(field realtime.FilterField, path []string) string {
	if field == realtime.FieldAttr {
		return "attr." + strings.Join(path, ".")
	}
	return string(field)
}

// detail returns the detail of a realtime.Error.
func detail(err error) string {
	var e *realtime.Error
	if errors.As(err, &e) && e.Detail != "" {
		return e.Detail
	}
	return err.Error()
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
