package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Filter is a parsed, validated conversation query condition: the `where`
// of the SDKs' conversation queries (and of LeanCloud's REST API, GET
// /1.2/rtm/conversations), as a tree a Store translates into its own query
// language. Package hub parses the SDK's JSON into a Filter with size and
// cost limits (depth, terms, list lengths, regex complexity); a Store only
// has to translate the tree.
//
// A node is either a combination (Op is FilterAnd or FilterOr, operands in
// Filters) or a comparison of one Field (and Path, for custom attributes)
// with Value, Values, Size or Regex, as Op says. Match is the reference
// semantics every Store must follow; Validate checks a tree built by hand.
//
// # Fields and values
//
// Field names are those of LeanCloud's _Conversation class, as the SDKs
// send them:
//
//	objectId, name, c (creator)          strings
//	m (members), mu (muted)              sets of client ids
//	tr (transient), sys (system), unique booleans
//	lm, createdAt, updatedAt             dates (time.Time, millisecond precision)
//	anything else                        a custom attribute (FieldAttr)
//
// lm is the time of the newest message, or the creation time for a
// conversation without messages (as the default sort "-lm" orders them);
// `lm $exists` tells whether there is a message.
//
// A custom attribute is addressed by Path, the keys leading to it inside
// Conversation.Attrs: the SDK's "attr.type" and a bare "type" both become
// Path ["type"] (the hub keeps custom attributes given at creation at the
// top level of Attrs, and query results spread Attrs at the top level, so
// the SDK reads them back with get("type")). Path keys are 1 to
// MaxAttrKeyLength bytes of ASCII letters, digits, '_' and '-', beginning
// with a letter or '_', at most MaxAttrPathDepth deep: so a Store may put
// them into its query text, and digits never turn into array indexes.
//
// Values are string, float64 (JSON numbers), bool, nil (JSON null) or
// time.Time. A custom attribute holding a date holds LeanCloud's JSON form
// {"__type":"Date","iso":"2006-01-02T15:04:05.000Z"}; a time.Time value
// matches it by comparing iso with DateISO of the value as strings (the
// SDKs always write that form).
//
// # Operators
//
//   - FilterEq: equal (same JSON type and value; numbers numerically). On m
//     and mu, and on a custom attribute holding an array: the set or array
//     contains Value (MongoDB's rule, which LeanCloud's storage follows).
//     Eq nil also matches a missing attribute.
//   - FilterNe, FilterNin: the negation of Eq, In (so they match a missing
//     attribute).
//   - FilterIn: Eq one of Values (an empty list matches nothing).
//   - FilterGt, FilterGte, FilterLt, FilterLte: ordered comparison with a
//     string (byte order), number or date of the same type; values of
//     another type never match. Not on m, mu or booleans.
//   - FilterExists: the field is present when Value is true, absent when
//     false. Built-in fields are always present (query results always carry
//     them) except lm, present when the conversation has a message.
//   - FilterRegex: the string value matches Regex (Go's RE2 syntax,
//     linear-time). Not on m, mu, booleans or dates.
//   - FilterAll: the set or array contains every one of Values (an empty
//     list matches everything; a scalar attribute counts as a one-element
//     array).
//   - FilterSize: the set or array has exactly Size elements (m of a chat
//     room is empty).
type Filter struct {
	Op FilterOp
	// Field is what a comparison looks at; empty for FilterAnd and FilterOr.
	Field FilterField
	// Path is the custom attribute's key path when Field is FieldAttr; nil
	// otherwise.
	Path []string
	// Value is the operand of Eq, Ne, Gt, Gte, Lt and Lte, and the bool of
	// Exists.
	Value any
	// Values are the operands of In, Nin and All.
	Values []any
	// Size is the element count of FilterSize.
	Size int
	// Regex is the pattern of FilterRegex, with its options as a (?flags)
	// prefix: Regex.String() is what a Store translates.
	Regex *regexp.Regexp
	// Filters are the operands of FilterAnd (all must match) and FilterOr
	// (one must); at least one.
	Filters []*Filter
}

// FilterOp is the operator of a Filter node.
type FilterOp int

// Filter operators; see Filter for their meaning.
const (
	FilterAnd FilterOp = iota + 1
	FilterOr
	FilterEq
	FilterNe
	FilterIn
	FilterNin
	FilterGt
	FilterGte
	FilterLt
	FilterLte
	FilterExists
	FilterRegex
	FilterAll
	FilterSize
)

var filterOpNames = map[FilterOp]string{
	FilterAnd: "$and", FilterOr: "$or", FilterEq: "$eq", FilterNe: "$ne", FilterIn: "$in", FilterNin: "$nin",
	FilterGt: "$gt", FilterGte: "$gte", FilterLt: "$lt", FilterLte: "$lte", FilterExists: "$exists",
	FilterRegex: "$regex", FilterAll: "$all", FilterSize: "$size",
}

// String returns the operator as the query language writes it ("$gt").
func (op FilterOp) String() string {
	if s, ok := filterOpNames[op]; ok {
		return s
	}
	return fmt.Sprintf("FilterOp(%d)", int(op))
}

// FilterField names a conversation field of the query language. The
// constants are the _Conversation column names the SDKs send.
type FilterField string

// Filter fields; see Filter.
const (
	FieldObjectID      FilterField = "objectId"
	FieldName          FilterField = "name"
	FieldCreator       FilterField = "c"
	FieldMembers       FilterField = "m"
	FieldMuted         FilterField = "mu"
	FieldTransient     FilterField = "tr"
	FieldSystem        FilterField = "sys"
	FieldUnique        FilterField = "unique"
	FieldLastMessageAt FilterField = "lm"
	FieldCreatedAt     FilterField = "createdAt"
	FieldUpdatedAt     FilterField = "updatedAt"
	// FieldAttr is a custom attribute; Filter.Path says which.
	FieldAttr FilterField = "attr"
)

// fieldKind groups fields by the operators and values they take.
type fieldKind int

const (
	kindString fieldKind = iota + 1
	kindSet
	kindBool
	kindDate
	kindAttr
)

var fieldKinds = map[FilterField]fieldKind{
	FieldObjectID: kindString, FieldName: kindString, FieldCreator: kindString,
	FieldMembers: kindSet, FieldMuted: kindSet,
	FieldTransient: kindBool, FieldSystem: kindBool, FieldUnique: kindBool,
	FieldLastMessageAt: kindDate, FieldCreatedAt: kindDate, FieldUpdatedAt: kindDate,
	FieldAttr: kindAttr,
}

// Limits of custom attribute paths (see Filter).
const (
	MaxAttrPathDepth = 4
	MaxAttrKeyLength = 64
	// MaxSortKeys is the most fields a sort may name.
	MaxSortKeys = 8
)

// notQueryable are keys of query results that are not stored fields.
var notQueryable = map[string]bool{
	"uniqueId": true, "ttl": true, "msg": true, "msg_mid": true, "msg_from": true,
	"msg_timestamp": true, "patch_timestamp": true, "bin": true,
}

// ParseFieldKey resolves a key of a where clause or sort to a field: a
// built-in field name, or a custom attribute as "attr.k1.k2" or as a bare
// "k1.k2". It fails with ErrConvQueryFailed for keys that are not fields.
func ParseFieldKey(key string) (FilterField, []string, error) {
	if k := FilterField(key); k != FieldAttr {
		if _, ok := fieldKinds[k]; ok {
			return k, nil, nil
		}
	}
	switch {
	case key == "attr":
		return "", nil, ErrConvQueryFailed.WithDetail("query custom attributes as attr.<key>")
	case strings.HasPrefix(key, "$"):
		return "", nil, ErrConvQueryFailed.WithDetail("unsupported operator %q", clip(key))
	case notQueryable[key]:
		return "", nil, ErrConvQueryFailed.WithDetail("%s is not a queryable field", key)
	}
	path := strings.Split(strings.TrimPrefix(key, "attr."), ".")
	if err := checkPath(path); err != nil {
		return "", nil, err
	}
	return FieldAttr, path, nil
}

func checkPath(path []string) error {
	if len(path) == 0 || len(path) > MaxAttrPathDepth {
		return ErrConvQueryFailed.WithDetail("custom attribute paths have 1 to %d keys", MaxAttrPathDepth)
	}
	for _, k := range path {
		if !ValidAttrKey(k) {
			return ErrConvQueryFailed.WithDetail("invalid custom attribute key %q: 1 to %d letters, digits, '_' or '-', beginning with a letter or '_'",
				clip(k), MaxAttrKeyLength)
		}
	}
	return nil
}

// ValidAttrKey reports whether k may be a key of a custom attribute path:
// 1 to MaxAttrKeyLength bytes of ASCII letters, digits, '_' and '-',
// beginning with a letter or '_'.
func ValidAttrKey(k string) bool {
	if k == "" || len(k) > MaxAttrKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// clip shortens s for an error detail.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// SortKey is one field of a sort order.
type SortKey struct {
	Field FilterField
	Path  []string // the custom attribute's path when Field is FieldAttr
	Desc  bool
}

// ParseSort parses a conversation query's sort: a comma-separated list of
// fields (see ParseFieldKey), each with a "-" prefix for descending order.
// Any field but m and mu may be sorted on. Custom attributes sort missing
// and null values first, then booleans (false first), numbers, strings
// (byte order), dates, and other values last, in no defined order. An
// empty sort returns nil (stores then sort by "-lm"). It fails with
// ErrConvQueryFailed.
func ParseSort(sort string) ([]SortKey, error) {
	if strings.TrimSpace(sort) == "" {
		return nil, nil
	}
	parts := strings.Split(sort, ",")
	if len(parts) > MaxSortKeys {
		return nil, ErrConvQueryFailed.WithDetail("at most %d sort fields", MaxSortKeys)
	}
	keys := make([]SortKey, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		var k SortKey
		if strings.HasPrefix(p, "-") {
			k.Desc, p = true, p[1:]
		}
		if p == "" {
			return nil, ErrConvQueryFailed.WithDetail("empty sort field")
		}
		f, path, err := ParseFieldKey(p)
		if err != nil {
			return nil, ErrConvQueryFailed.WithDetail("unknown sort field %q", clip(p))
		}
		if fieldKinds[f] == kindSet {
			return nil, ErrConvQueryFailed.WithDetail("cannot sort by %s", f)
		}
		k.Field, k.Path = f, path
		keys = append(keys, k)
	}
	return keys, nil
}

// DateISO is the canonical text of a date in custom attributes, as the
// SDKs write it: UTC with milliseconds, "2006-01-02T15:04:05.000Z".
func DateISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Validate checks that f is a tree Match and the stores understand: known
// operators and fields, values of the types the field takes, valid paths,
// non-empty combinations. It returns ErrConvQueryFailed with the reason.
// Stores call it on every Where they are given (a Filter may be built by
// hand); the parser of package hub only builds valid trees.
func (f *Filter) Validate() error {
	if f == nil {
		return ErrConvQueryFailed.WithDetail("nil filter")
	}
	switch f.Op {
	case FilterAnd, FilterOr:
		if len(f.Filters) == 0 {
			return ErrConvQueryFailed.WithDetail("%s needs at least one condition", f.Op)
		}
		for _, c := range f.Filters {
			if err := c.Validate(); err != nil {
				return err
			}
		}
		return nil
	}
	kind, ok := fieldKinds[f.Field]
	if !ok {
		return ErrConvQueryFailed.WithDetail("unknown field %q", clip(string(f.Field)))
	}
	if kind == kindAttr {
		if err := checkPath(f.Path); err != nil {
			return err
		}
	} else if f.Path != nil {
		return ErrConvQueryFailed.WithDetail("%s has no path", f.Field)
	}
	bad := func(what string) error {
		return ErrConvQueryFailed.WithDetail("%s %s takes %s", f.name(), f.Op, what)
	}
	switch f.Op {
	case FilterEq, FilterNe:
		if !valueFits(kind, f.Value, false) {
			return bad(kindValues(kind, false))
		}
	case FilterGt, FilterGte, FilterLt, FilterLte:
		if kind == kindSet || kind == kindBool {
			return ErrConvQueryFailed.WithDetail("%s does not take %s", f.name(), f.Op)
		}
		if !valueFits(kind, f.Value, true) {
			return bad(kindValues(kind, true))
		}
	case FilterIn, FilterNin, FilterAll:
		if f.Op == FilterAll && kind != kindSet && kind != kindAttr {
			return ErrConvQueryFailed.WithDetail("%s does not take $all", f.name())
		}
		for _, v := range f.Values {
			if !valueFits(kind, v, false) {
				return bad("a list of " + kindValues(kind, false))
			}
		}
	case FilterExists:
		if _, ok := f.Value.(bool); !ok {
			return bad("true or false")
		}
	case FilterRegex:
		if kind != kindString && kind != kindAttr {
			return ErrConvQueryFailed.WithDetail("%s does not take $regex", f.name())
		}
		if f.Regex == nil {
			return bad("a regular expression")
		}
	case FilterSize:
		if kind != kindSet && kind != kindAttr {
			return ErrConvQueryFailed.WithDetail("%s does not take $size", f.name())
		}
		if f.Size < 0 {
			return bad("a count >= 0")
		}
	default:
		return ErrConvQueryFailed.WithDetail("unknown operator %d", int(f.Op))
	}
	return nil
}

// name is the field as the query names it, for error details.
func (f *Filter) name() string {
	if f.Field == FieldAttr {
		return "attr." + strings.Join(f.Path, ".")
	}
	return string(f.Field)
}

func valueFits(kind fieldKind, v any, ordered bool) bool {
	switch kind {
	case kindString, kindSet:
		_, ok := v.(string)
		return ok
	case kindBool:
		_, ok := v.(bool)
		return ok
	case kindDate:
		_, ok := v.(time.Time)
		return ok
	}
	switch v := v.(type) {
	case string, time.Time:
		return true
	case float64:
		return !math.IsNaN(v) && !math.IsInf(v, 0)
	case bool, nil:
		return !ordered
	}
	return false
}

func kindValues(kind fieldKind, ordered bool) string {
	switch kind {
	case kindString, kindSet:
		return "a string"
	case kindBool:
		return "a boolean"
	case kindDate:
		return `a date ({"__type":"Date","iso":...} or milliseconds)`
	}
	if ordered {
		return "a string, number or date"
	}
	return "a string, number, boolean, null or date"
}

// Match reports whether c satisfies f: the reference semantics of the query
// language, which every Store's translation must follow (the conformance
// suite compares them). lm is read from c.LastMessage (as
// QueryConversations with WithLastMessage fills it), else c.CreatedAt. f
// must be valid.
func (f *Filter) Match(c *Conversation) bool {
	m := matcher{c: c}
	return m.match(f)
}

type matcher struct {
	c       *Conversation
	attrs   map[string]any
	decoded bool
}

// missing stands for an absent custom attribute.
type missingValue struct{}

var missing any = missingValue{}

func (m *matcher) match(f *Filter) bool {
	switch f.Op {
	case FilterAnd:
		for _, s := range f.Filters {
			if !m.match(s) {
				return false
			}
		}
		return true
	case FilterOr:
		for _, s := range f.Filters {
			if m.match(s) {
				return true
			}
		}
		return false
	}
	switch fieldKinds[f.Field] {
	case kindString:
		return matchString(f, m.stringField(f.Field))
	case kindSet:
		set := m.c.Members
		if f.Field == FieldMuted {
			set = m.c.Muted
		}
		items := make([]any, len(set))
		for i, s := range set {
			items[i] = s
		}
		if f.Op == FilterExists {
			return f.Value.(bool)
		}
		return matchJSON(f, items)
	case kindBool:
		return matchBool(f, m.boolField(f.Field))
	case kindDate:
		ms, present := m.dateField(f.Field)
		return matchDate(f, ms, present)
	}
	return matchJSON(f, m.attr(f.Path))
}

func (m *matcher) stringField(f FilterField) string {
	switch f {
	case FieldObjectID:
		return m.c.ID
	case FieldName:
		return m.c.Name
	}
	return m.c.Creator
}

func (m *matcher) boolField(f FilterField) bool {
	switch f {
	case FieldTransient:
		return m.c.Transient
	case FieldSystem:
		return m.c.System
	}
	return m.c.Unique
}

func (m *matcher) dateField(f FilterField) (int64, bool) {
	switch f {
	case FieldCreatedAt:
		return m.c.CreatedAt.UnixMilli(), true
	case FieldUpdatedAt:
		return m.c.UpdatedAt.UnixMilli(), true
	}
	if m.c.LastMessage != nil {
		return m.c.LastMessage.Timestamp, true
	}
	return m.c.CreatedAt.UnixMilli(), false
}

func (m *matcher) attr(path []string) any {
	if !m.decoded {
		m.decoded = true
		if a := bytes.TrimSpace(m.c.Attrs); len(a) > 0 {
			_ = json.Unmarshal(a, &m.attrs)
		}
	}
	var v any = m.attrs
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return missing
		}
		if v, ok = obj[k]; !ok {
			return missing
		}
	}
	return v
}

func matchString(f *Filter, s string) bool {
	switch f.Op {
	case FilterEq:
		return s == f.Value.(string)
	case FilterNe:
		return s != f.Value.(string)
	case FilterIn, FilterNin:
		in := false
		for _, v := range f.Values {
			in = in || s == v.(string)
		}
		return in == (f.Op == FilterIn)
	case FilterGt, FilterGte, FilterLt, FilterLte:
		return ordered(f.Op, strings.Compare(s, f.Value.(string)))
	case FilterExists:
		return f.Value.(bool)
	case FilterRegex:
		return f.Regex.MatchString(s)
	}
	return false
}

func matchBool(f *Filter, b bool) bool {
	switch f.Op {
	case FilterEq:
		return b == f.Value.(bool)
	case FilterNe:
		return b != f.Value.(bool)
	case FilterIn, FilterNin:
		in := false
		for _, v := range f.Values {
			in = in || b == v.(bool)
		}
		return in == (f.Op == FilterIn)
	case FilterExists:
		return f.Value.(bool)
	}
	return false
}

func matchDate(f *Filter, ms int64, present bool) bool {
	cmp := func(v any) int {
		t := v.(time.Time).UnixMilli()
		switch {
		case ms < t:
			return -1
		case ms > t:
			return 1
		}
		return 0
	}
	switch f.Op {
	case FilterEq:
		return cmp(f.Value) == 0
	case FilterNe:
		return cmp(f.Value) != 0
	case FilterIn, FilterNin:
		in := false
		for _, v := range f.Values {
			in = in || cmp(v) == 0
		}
		return in == (f.Op == FilterIn)
	case FilterGt, FilterGte, FilterLt, FilterLte:
		return ordered(f.Op, cmp(f.Value))
	case FilterExists:
		return present == f.Value.(bool)
	}
	return false
}

// ordered applies a range operator to a comparison result.
func ordered(op FilterOp, c int) bool {
	switch op {
	case FilterGt:
		return c > 0
	case FilterGte:
		return c >= 0
	case FilterLt:
		return c < 0
	}
	return c <= 0
}

// matchJSON applies f to a decoded JSON value (missing when absent).
func matchJSON(f *Filter, x any) bool {
	switch f.Op {
	case FilterEq:
		return jsonEq(x, f.Value)
	case FilterNe:
		return !jsonEq(x, f.Value)
	case FilterIn, FilterNin:
		in := false
		for _, v := range f.Values {
			in = in || jsonEq(x, v)
		}
		return in == (f.Op == FilterIn)
	case FilterAll:
		for _, v := range f.Values {
			if !jsonEq(x, v) {
				return false
			}
		}
		return true
	case FilterGt, FilterGte, FilterLt, FilterLte:
		switch v := f.Value.(type) {
		case string:
			s, ok := x.(string)
			return ok && ordered(f.Op, strings.Compare(s, v))
		case float64:
			n, ok := x.(float64)
			return ok && ordered(f.Op, compareFloat(n, v))
		case time.Time:
			iso, ok := dateISOOf(x)
			return ok && ordered(f.Op, strings.Compare(iso, DateISO(v)))
		}
		return false
	case FilterExists:
		return (x != missing) == f.Value.(bool)
	case FilterRegex:
		s, ok := x.(string)
		return ok && f.Regex.MatchString(s)
	case FilterSize:
		a, ok := x.([]any)
		return ok && len(a) == f.Size
	}
	return false
}

// jsonEq: x equals v, or x is an array with an element equal to v (not for
// dates); nil also matches a missing x.
func jsonEq(x, v any) bool {
	if t, ok := v.(time.Time); ok {
		iso, ok := dateISOOf(x)
		return ok && iso == DateISO(t)
	}
	if v == nil && x == missing {
		return true
	}
	if scalarEq(x, v) {
		return true
	}
	if a, ok := x.([]any); ok {
		for _, e := range a {
			if scalarEq(e, v) {
				return true
			}
		}
	}
	return false
}

func scalarEq(x, v any) bool {
	switch v := v.(type) {
	case nil:
		return x == nil
	case string:
		s, ok := x.(string)
		return ok && s == v
	case float64:
		n, ok := x.(float64)
		return ok && n == v
	case bool:
		b, ok := x.(bool)
		return ok && b == v
	}
	return false
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dateISOOf returns the iso of a {"__type":"Date","iso":...} object.
func dateISOOf(x any) (string, bool) {
	obj, ok := x.(map[string]any)
	if !ok || obj["__type"] != "Date" {
		return "", false
	}
	iso, ok := obj["iso"].(string)
	return iso, ok
}
