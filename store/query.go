package store

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/leanhub/realtime"
)

// Translation of realtime.Filter and sort keys into SQL, for SQLite and
// PostgreSQL, with the semantics of Filter.Match on both.
//
// Values are always query arguments (bun's placeholders, escaped by the
// dialect); field names never reach the SQL text except as the fixed
// column expressions below. Custom attribute paths do, as JSON path
// literals ('$."a"."b"' on SQLite, '{a,b}' on PostgreSQL), built only from
// keys realtime.ValidAttrKey accepts (letters, digits, '_' and '-'), which
// is checked again here for filters built by hand; a literal path, unlike
// an argument, lets an application add an expression index for an
// attribute it queries often (SQLite: json_extract(attrs, '$."type"')).
//
// Where each kind of condition goes:
//
//   - objectId, name, c, tr, sys, unique, createdAt, updatedAt: columns of
//     conversations (indexes of migration 3 for name, createdAt,
//     updatedAt, and partial ones for tr and sys). On PostgreSQL, name and
//     c compare and sort with COLLATE "C" (byte order, as SQLite and
//     Match do), and the name index is built with it.
//   - lm: last_ts, or created_at without messages. Not indexed on purpose:
//     last_ts changes on every append, and on PostgreSQL an index on it
//     would make every conversation head update a non-HOT one, writing
//     to every index of the table.
//   - m: the members table (members_client, the primary key), as IN
//     subqueries, which both planners can drive from the member's rows.
//   - mu and custom attributes: the JSON text columns muted and attrs. On
//     SQLite through json_type/json_extract/json_each: a scan of the rows
//     the other conditions leave (the hub's queries always name members,
//     ids, chat rooms or system conversations). On PostgreSQL equality,
//     $in and $all are written as jsonb containment, attrs::jsonb @>
//     '{"a":{"b":v}}' OR @> '{"a":{"b":[v]}}' (scalar equal, or array
//     containing), which the GIN index of migration 3 answers; other
//     operators use #> and #>> with type checks.
//   - $regex: see regex.go.

// sqlText accumulates a statement's text and arguments.
type sqlText struct {
	pg   bool
	b    strings.Builder
	args []any
}

func (q *sqlText) w(parts ...string) {
	for _, p := range parts {
		q.b.WriteString(p)
	}
}

// arg writes a placeholder for v.
func (q *sqlText) arg(v any) {
	q.b.WriteString("?")
	q.args = append(q.args, v)
}

// filter writes f as a boolean SQL expression that is never NULL (so that
// NOT of it is the complement).
func (q *sqlText) filter(f *realtime.Filter) error {
	switch f.Op {
	case realtime.FilterAnd, realtime.FilterOr:
		sep := " AND "
		if f.Op == realtime.FilterOr {
			sep = " OR "
		}
		q.w("(")
		for i, s := range f.Filters {
			if i > 0 {
				q.w(sep)
			}
			if err := q.filter(s); err != nil {
				return err
			}
		}
		q.w(")")
		return nil
	}
	switch f.Field {
	case realtime.FieldObjectID:
		return q.column(f, "c.id", "c.id")
	case realtime.FieldName:
		return q.column(f, q.collated("c.name"), q.collated("c.name"))
	case realtime.FieldCreator:
		return q.column(f, "c.creator", q.collated("c.creator"))
	case realtime.FieldTransient:
		return q.boolean(f, "c.is_transient")
	case realtime.FieldSystem:
		return q.boolean(f, "c.is_system")
	case realtime.FieldUnique:
		return q.boolean(f, "c.is_unique")
	case realtime.FieldCreatedAt:
		return q.date(f, "c.created_at", "TRUE")
	case realtime.FieldUpdatedAt:
		return q.date(f, "c.updated_at", "TRUE")
	case realtime.FieldLastMessageAt:
		return q.date(f, lmExpr, "c.last_ts > 0")
	case realtime.FieldMembers:
		return q.members(f)
	case realtime.FieldMuted:
		if f.Op == realtime.FilterExists {
			q.w(boolSQL(f.Value.(bool)))
			return nil
		}
		return q.json(f, "c.muted", nil)
	case realtime.FieldAttr:
		return q.json(f, "c.attrs", f.Path)
	}
	return realtime.ErrConvQueryFailed.WithDetail("unknown field %q", f.Field)
}

// lmExpr is the lm of a conversation row, as Filter and the sort define it.
const lmExpr = "(CASE WHEN c.last_ts > 0 THEN c.last_ts ELSE c.created_at END)"

// collated is a text column compared in byte order on both databases.
func (q *sqlText) collated(col string) string {
	if q.pg {
		return col + ` COLLATE "C"`
	}
	return col
}

func boolSQL(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// column writes a condition on a text column; ordered is the expression
// for range comparisons.
func (q *sqlText) column(f *realtime.Filter, col, ordered string) error {
	switch f.Op {
	case realtime.FilterEq:
		q.w(col, " = ")
		q.arg(f.Value)
	case realtime.FilterNe:
		q.w(col, " <> ")
		q.arg(f.Value)
	case realtime.FilterIn, realtime.FilterNin:
		q.in(col, f.Op == realtime.FilterNin, f.Values)
	case realtime.FilterGt, realtime.FilterGte, realtime.FilterLt, realtime.FilterLte:
		q.w(ordered, rangeOps[f.Op])
		q.arg(f.Value)
	case realtime.FilterExists:
		q.w(boolSQL(f.Value.(bool)))
	case realtime.FilterRegex:
		return q.regex(col, f)
	default:
		return unsupported(f)
	}
	return nil
}

var rangeOps = map[realtime.FilterOp]string{
	realtime.FilterGt: " > ", realtime.FilterGte: " >= ", realtime.FilterLt: " < ", realtime.FilterLte: " <= ",
}

func unsupported(f *realtime.Filter) error {
	return realtime.ErrConvQueryFailed.WithDetail("%s does not take %s", f.Field, f.Op)
}

// in writes col IN (values), or NOT IN; an empty list is FALSE (TRUE).
func (q *sqlText) in(col string, not bool, values []any) {
	if len(values) == 0 {
		q.w(boolSQL(not))
		return
	}
	if not {
		q.w(col, " NOT IN (")
	} else {
		q.w(col, " IN (")
	}
	q.arg(bun.In(values))
	q.w(")")
}

// regex writes text ~ f.Regex with RE2 semantics.
func (q *sqlText) regex(text string, f *realtime.Filter) error {
	if q.pg {
		are, err := postgresRegex(f.Regex.String())
		if err != nil {
			return realtime.ErrConvQueryFailed.WithDetail("unsupported $regex")
		}
		q.w("(", text, " ~ ")
		q.arg(are)
		q.w(")")
		return nil
	}
	q.w(regexpFunc, "(")
	q.arg(f.Regex.String())
	q.w(", ", text, ")")
	return nil
}

func (q *sqlText) boolean(f *realtime.Filter, col string) error {
	is := func(b bool) string {
		if b {
			return col
		}
		return "NOT " + col
	}
	switch f.Op {
	case realtime.FilterEq:
		q.w(is(f.Value.(bool)))
	case realtime.FilterNe:
		q.w(is(!f.Value.(bool)))
	case realtime.FilterIn, realtime.FilterNin:
		var t, fa bool
		for _, v := range f.Values {
			t, fa = t || v.(bool), fa || !v.(bool)
		}
		neg := f.Op == realtime.FilterNin
		switch {
		case t && fa, !t && !fa:
			q.w(boolSQL((t && fa) != neg))
		default:
			q.w(is(t != neg))
		}
	case realtime.FilterExists:
		q.w(boolSQL(f.Value.(bool)))
	default:
		return unsupported(f)
	}
	// A literal condition (not "= ?") lets SQLite use the partial indexes
	// on is_transient and is_system.
	return nil
}

// date writes a condition on a millisecond column or expression; exists
// is the SQL that tells whether the field is present.
func (q *sqlText) date(f *realtime.Filter, expr, exists string) error {
	ms := func(v any) int64 { return v.(time.Time).UnixMilli() }
	switch f.Op {
	case realtime.FilterEq:
		q.w(expr, " = ")
		q.arg(ms(f.Value))
	case realtime.FilterNe:
		q.w(expr, " <> ")
		q.arg(ms(f.Value))
	case realtime.FilterGt, realtime.FilterGte, realtime.FilterLt, realtime.FilterLte:
		q.w(expr, rangeOps[f.Op])
		q.arg(ms(f.Value))
	case realtime.FilterIn, realtime.FilterNin:
		vs := make([]any, len(f.Values))
		for i, v := range f.Values {
			vs[i] = ms(v)
		}
		q.in(expr, f.Op == realtime.FilterNin, vs)
	case realtime.FilterExists:
		if f.Value.(bool) {
			q.w("(", exists, ")")
		} else {
			q.w("NOT (", exists, ")")
		}
	default:
		return unsupported(f)
	}
	return nil
}

// members writes a condition on m through the members table.
func (q *sqlText) members(f *realtime.Filter) error {
	sub := func(not bool, values []any) {
		if not {
			q.w("c.id NOT IN (SELECT conv_id FROM members WHERE client_id IN (")
		} else {
			q.w("c.id IN (SELECT conv_id FROM members WHERE client_id IN (")
		}
		q.arg(bun.In(values))
		q.w("))")
	}
	switch f.Op {
	case realtime.FilterEq, realtime.FilterNe:
		sub(f.Op == realtime.FilterNe, []any{f.Value})
	case realtime.FilterIn, realtime.FilterNin:
		if len(f.Values) == 0 {
			q.w(boolSQL(f.Op == realtime.FilterNin))
			return nil
		}
		sub(f.Op == realtime.FilterNin, f.Values)
	case realtime.FilterAll:
		ids := make([]string, len(f.Values))
		for i, v := range f.Values {
			ids[i] = v.(string)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(ids) == 0 {
			q.w("TRUE")
			return nil
		}
		q.w("c.id IN (SELECT conv_id FROM members WHERE client_id IN (")
		q.arg(bun.In(ids))
		q.w(") GROUP BY conv_id HAVING COUNT(*) = ")
		q.arg(len(ids))
		q.w(")")
	case realtime.FilterSize:
		q.w("c.member_count = ")
		q.arg(f.Size)
	case realtime.FilterExists:
		q.w(boolSQL(f.Value.(bool)))
	default:
		return unsupported(f)
	}
	return nil
}

// jsonPath is a JSON value inside a text column: column and key path
// (nil: the column's top-level value).
type jsonPath struct {
	pg   bool
	col  string
	path []string
}

func (q *sqlText) jsonPath(col string, path []string) (jsonPath, error) {
	for _, k := range path {
		if !realtime.ValidAttrKey(k) {
			return jsonPath{}, realtime.ErrConvQueryFailed.WithDetail("invalid custom attribute key %q", k)
		}
	}
	return jsonPath{pg: q.pg, col: col, path: path}, nil
}

func (p jsonPath) sub(key string) jsonPath {
	return jsonPath{pg: p.pg, col: p.col, path: append(slices.Clip(p.path), key)}
}

// doc is the column as a JSON document.
func (p jsonPath) doc() string {
	if p.pg {
		return "(" + p.col + "::jsonb)"
	}
	return p.col
}

// literal is the path as a SQL string literal: '$."a"."b"' or '{a,b}'.
// Keys are checked by jsonPath.
func (p jsonPath) literal() string {
	if p.pg {
		return "'{" + strings.Join(p.path, ",") + "}'"
	}
	var b strings.Builder
	b.WriteString("'$")
	for _, k := range p.path {
		b.WriteString(`."` + k + `"`)
	}
	b.WriteString("'")
	return b.String()
}

// value is the JSON value (PostgreSQL: jsonb, NULL when missing).
func (p jsonPath) value() string { return "(" + p.doc() + " #> " + p.literal() + ")" }

// text is the value as text (PostgreSQL #>>; SQLite json_extract, which
// gives strings as text and numbers as numbers).
func (p jsonPath) text() string {
	if p.pg {
		return "(" + p.doc() + " #>> " + p.literal() + ")"
	}
	return "json_extract(" + p.col + ", " + p.literal() + ")"
}

// typeIs is the condition that the value has a JSON type: t is "string",
// "number", "array" (NULL when missing, so callers guard with COALESCE).
func (p jsonPath) typeIs(t string) string {
	if p.pg {
		return "jsonb_typeof" + p.value() + " = '" + t + "'"
	}
	switch t {
	case "string":
		return "json_type(" + p.col + ", " + p.literal() + ") = 'text'"
	case "number":
		return "json_type(" + p.col + ", " + p.literal() + ") IN ('integer', 'real')"
	}
	return "json_type(" + p.col + ", " + p.literal() + ") = '" + t + "'"
}

// missing is the condition that the path is absent.
func (p jsonPath) missing() string {
	if p.pg {
		return p.value() + " IS NULL"
	}
	return "json_type(" + p.col + ", " + p.literal() + ") IS NULL"
}

// isDate is the condition that the value is a {"__type":"Date","iso":...}.
func (p jsonPath) isDate() string {
	typ, iso := p.sub("__type"), p.sub("iso")
	return typ.text() + " = 'Date' AND " + iso.typeIs("string")
}

// json writes a condition on a JSON value (mu, custom attributes).
func (q *sqlText) json(f *realtime.Filter, col string, path []string) error {
	p, err := q.jsonPath(col, path)
	if err != nil {
		return err
	}
	switch f.Op {
	case realtime.FilterEq:
		return q.jsonEq(p, []any{f.Value})
	case realtime.FilterNe:
		q.w("NOT ")
		return q.jsonEq(p, []any{f.Value})
	case realtime.FilterIn:
		return q.jsonEq(p, f.Values)
	case realtime.FilterNin:
		q.w("NOT ")
		return q.jsonEq(p, f.Values)
	case realtime.FilterAll:
		if len(f.Values) == 0 {
			q.w("TRUE")
			return nil
		}
		q.w("(")
		for i, v := range f.Values {
			if i > 0 {
				q.w(" AND ")
			}
			if err := q.jsonEq(p, []any{v}); err != nil {
				return err
			}
		}
		q.w(")")
	case realtime.FilterGt, realtime.FilterGte, realtime.FilterLt, realtime.FilterLte:
		op := rangeOps[f.Op]
		q.w("COALESCE(")
		switch v := f.Value.(type) {
		case string:
			q.w(p.typeIs("string"), " AND ", q.collated(p.text()), op)
			q.arg(v)
		case float64:
			if q.pg {
				q.w(p.typeIs("number"), " AND ", p.value(), op)
				q.arg(jsonText(v))
				q.w("::jsonb")
			} else {
				q.w(p.typeIs("number"), " AND ", p.text(), op)
				q.arg(v)
			}
		case time.Time:
			q.w(p.isDate(), " AND ", q.collated(p.sub("iso").text()), op)
			q.arg(realtime.DateISO(v))
		default:
			return unsupported(f)
		}
		q.w(", FALSE)")
	case realtime.FilterExists:
		if f.Value.(bool) {
			q.w("NOT ")
		}
		q.w("(", p.missing(), ")")
	case realtime.FilterRegex:
		q.w("COALESCE(", p.typeIs("string"), " AND ")
		if err := q.regex(p.text(), f); err != nil {
			return err
		}
		q.w(", FALSE)")
	case realtime.FilterSize:
		// A CASE, because PostgreSQL does not promise to test the type
		// before jsonb_array_length fails on a scalar.
		if q.pg {
			q.w("(CASE WHEN ", p.typeIs("array"), " THEN jsonb_array_length", p.value(), " = ")
		} else {
			q.w("(CASE WHEN ", p.typeIs("array"), " THEN json_array_length(", p.col, ", ", p.literal(), ") = ")
		}
		q.arg(f.Size)
		q.w(" ELSE FALSE END)")
	default:
		return unsupported(f)
	}
	return nil
}

// jsonEq writes "the value equals one of values": a scalar equal to it, or
// an array with an element equal to it (dates: the date object, no array
// rule); null also matches a missing value. Never NULL.
func (q *sqlText) jsonEq(p jsonPath, values []any) error {
	if len(values) == 0 {
		q.w("FALSE")
		return nil
	}
	var scalars []any
	var dates []time.Time
	hasNull := false
	for _, v := range values {
		switch v := v.(type) {
		case time.Time:
			dates = append(dates, v)
		case nil:
			hasNull = true
			scalars = append(scalars, nil)
		case string, float64, bool:
			scalars = append(scalars, v)
		default:
			return realtime.ErrConvQueryFailed.WithDetail("unsupported value %T", v)
		}
	}
	q.w("(")
	sep := ""
	or := func() { q.w(sep); sep = " OR " }
	if hasNull {
		or()
		q.w(p.missing())
	}
	if q.pg {
		// Containment, which the GIN index on attrs::jsonb answers:
		// {"a":{"b":v}} for a scalar equal to v, {"a":{"b":[v]}} for an
		// array containing it. Numbers compare numerically.
		for _, v := range scalars {
			for _, wrap := range []bool{false, true} {
				or()
				q.w(p.doc(), " @> ")
				q.arg(containment(p.path, v, wrap))
				q.w("::jsonb")
			}
		}
		for _, d := range dates {
			or()
			q.w(p.doc(), " @> ")
			q.arg(containment(p.path, map[string]any{"__type": "Date", "iso": realtime.DateISO(d)}, false))
			q.w("::jsonb")
		}
		q.w(")")
		return nil
	}
	if len(scalars) > 0 {
		// json_each of a scalar yields the scalar itself (key NULL), of an
		// array its elements (integer keys), of an object its members
		// (text keys, left out).
		var strs, nums []any
		var t, fa, null bool
		for _, v := range scalars {
			switch v := v.(type) {
			case string:
				strs = append(strs, v)
			case float64:
				nums = append(nums, v)
			case bool:
				t, fa = t || v, fa || !v
			case nil:
				null = true
			}
		}
		or()
		q.w("EXISTS (SELECT 1 FROM json_each(", p.col, ", ", p.literal(), ") AS j WHERE typeof(j.key) <> 'text' AND (")
		alt := ""
		next := func() { q.w(alt); alt = " OR " }
		if len(strs) > 0 {
			next()
			q.w("j.type = 'text' AND j.atom IN (")
			q.arg(bun.In(strs))
			q.w(")")
		}
		if len(nums) > 0 {
			next()
			q.w("j.type IN ('integer', 'real') AND j.atom IN (")
			q.arg(bun.In(nums))
			q.w(")")
		}
		for _, c := range []struct {
			on  bool
			typ string
		}{{t, "true"}, {fa, "false"}, {null, "null"}} {
			if c.on {
				next()
				q.w("j.type = '", c.typ, "'")
			}
		}
		q.w("))")
	}
	for _, d := range dates {
		or()
		q.w("COALESCE(", p.isDate(), " AND ", p.sub("iso").text(), " = ")
		q.arg(realtime.DateISO(d))
		q.w(", FALSE)")
	}
	q.w(")")
	return nil
}

// containment is the JSON document {"k1":{"k2":v}} (or [v] when wrap).
func containment(path []string, v any, wrap bool) string {
	if wrap {
		v = []any{v}
	}
	for i := len(path) - 1; i >= 0; i-- {
		v = map[string]any{path[i]: v}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonText(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// orderBy writes the ORDER BY list of sort keys (nil: "-lm"), then id.
func (q *sqlText) orderBy(keys []realtime.SortKey) error {
	if len(keys) == 0 {
		keys = []realtime.SortKey{{Field: realtime.FieldLastMessageAt, Desc: true}}
	}
	var exprs []string
	for _, k := range keys {
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		var es []string
		switch k.Field {
		case realtime.FieldObjectID:
			es = []string{"c.id"}
		case realtime.FieldName:
			es = []string{q.collated("c.name")}
		case realtime.FieldCreator:
			es = []string{q.collated("c.creator")}
		case realtime.FieldTransient:
			es = []string{"c.is_transient"}
		case realtime.FieldSystem:
			es = []string{"c.is_system"}
		case realtime.FieldUnique:
			es = []string{"c.is_unique"}
		case realtime.FieldCreatedAt:
			es = []string{"c.created_at"}
		case realtime.FieldUpdatedAt:
			es = []string{"c.updated_at"}
		case realtime.FieldLastMessageAt:
			es = []string{lmExpr}
		case realtime.FieldAttr:
			p, err := q.jsonPath("c.attrs", k.Path)
			if err != nil {
				return err
			}
			es = attrSortExprs(p)
		default:
			return realtime.ErrConvQueryFailed.WithDetail("cannot sort by %s", k.Field)
		}
		for _, e := range es {
			exprs = append(exprs, e+dir)
		}
	}
	exprs = append(exprs, "c.id ASC")
	q.w(" ORDER BY ", strings.Join(exprs, ", "))
	return nil
}

// attrSortExprs order a custom attribute as realtime.ParseSort documents:
// a type rank (missing and null, booleans, numbers, strings, dates,
// others), then the value within the rank. The value expressions are NULL
// only for ranks where they all are, so where NULLs sort never matters.
func attrSortExprs(p jsonPath) []string {
	date := p.isDate()
	iso := p.sub("iso").text()
	if p.pg {
		v := p.value()
		return []string{
			"(CASE jsonb_typeof" + v + " WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3" +
				" WHEN 'object' THEN (CASE WHEN " + date + " THEN 4 ELSE 5 END) WHEN 'array' THEN 5 ELSE 0 END)",
			"(CASE jsonb_typeof" + v + " WHEN 'boolean' THEN (CASE WHEN " + v + " = 'true'::jsonb THEN 1 ELSE 0 END)" +
				" WHEN 'number' THEN " + v + "::numeric END)",
			"(CASE WHEN " + p.typeIs("string") + " THEN " + p.text() + " WHEN " + date + " THEN " + iso + ` END) COLLATE "C"`,
		}
	}
	typ := "json_type(" + p.col + ", " + p.literal() + ")"
	return []string{
		"(CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3" +
			" WHEN 'object' THEN (CASE WHEN " + date + " THEN 4 ELSE 5 END) WHEN 'array' THEN 5 ELSE 0 END)",
		"(CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN " + p.text() +
			" WHEN 'real' THEN " + p.text() + " END)",
		"(CASE WHEN " + p.typeIs("string") + " THEN " + p.text() + " WHEN " + date + " THEN " + iso + " END)",
	}
}

// conversationsSQL is the SELECT of QueryConversations; empty reports a
// query that matches nothing without asking the database.
func (s *SQL) conversationsSQL(q realtime.ConversationQuery) (query string, args []any, empty bool, err error) {
	var keys []realtime.SortKey
	if keys, err = realtime.ParseSort(q.Sort); err != nil {
		return "", nil, false, err
	}
	if q.Where != nil {
		if err := q.Where.Validate(); err != nil {
			return "", nil, false, err
		}
	}
	t := &sqlText{pg: s.pg}
	t.w("SELECT ", convCols, " FROM conversations c WHERE NOT (c.is_temporary AND c.expires_at > 0 AND c.expires_at <= ")
	t.arg(s.nowMs())
	t.w(")")
	if q.IDs != nil {
		ids := make([]string, 0, len(q.IDs))
		for _, id := range q.IDs {
			if validID(id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return "", nil, true, nil
		}
		t.w(" AND c.id IN (")
		t.arg(bun.In(ids))
		t.w(")")
	}
	if q.Member != "" {
		t.w(" AND c.id IN (SELECT conv_id FROM members WHERE client_id = ")
		t.arg(q.Member)
		t.w(")")
	}
	if len(q.AllMembers) > 0 {
		all := slices.Compact(slices.Sorted(slices.Values(q.AllMembers)))
		t.w(" AND c.id IN (SELECT conv_id FROM members WHERE client_id IN (")
		t.arg(bun.In(all))
		t.w(") GROUP BY conv_id HAVING COUNT(*) = ")
		t.arg(len(all))
		t.w(")")
	}
	if q.MemberCount > 0 {
		t.w(" AND c.member_count = ")
		t.arg(q.MemberCount)
		t.w(" AND NOT c.is_transient")
	}
	for _, f := range []struct {
		col string
		v   *bool
	}{{"c.is_transient", q.Transient}, {"c.is_system", q.System}, {"c.is_temporary", q.Temporary}} {
		if f.v != nil {
			t.w(" AND ")
			if !*f.v {
				t.w("NOT ")
			}
			t.w(f.col)
		}
	}
	if q.Where != nil {
		t.w(" AND ")
		if err := t.filter(q.Where); err != nil {
			return "", nil, false, err
		}
	}
	if err := t.orderBy(keys); err != nil {
		return "", nil, false, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, 1000)
	t.w(" LIMIT ")
	t.arg(limit)
	t.w(" OFFSET ")
	t.arg(max(q.Skip, 0))
	return t.b.String(), t.args, false, nil
}

// describeFilter is f as SQL, for tests and debugging.
func (s *SQL) describeFilter(f *realtime.Filter) (string, []any, error) {
	t := &sqlText{pg: s.pg}
	if err := t.filter(f); err != nil {
		return "", nil, err
	}
	return t.b.String(), t.args, nil
}
