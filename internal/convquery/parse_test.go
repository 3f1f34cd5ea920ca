package convquery

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

// render writes a filter compactly: op(field, value) and and(...)/or(...).
func render(f *realtime.Filter) string {
	if f == nil {
		return "true"
	}
	switch f.Op {
	case realtime.FilterAnd, realtime.FilterOr:
		parts := make([]string, len(f.Filters))
		for i, s := range f.Filters {
			parts[i] = render(s)
		}
		return strings.TrimPrefix(f.Op.String(), "$") + "(" + strings.Join(parts, ", ") + ")"
	}
	name := string(f.Field)
	if f.Field == realtime.FieldAttr {
		name = "attr:" + strings.Join(f.Path, "/")
	}
	op := strings.TrimPrefix(f.Op.String(), "$")
	switch f.Op {
	case realtime.FilterIn, realtime.FilterNin, realtime.FilterAll:
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = renderValue(v)
		}
		return fmt.Sprintf("%s(%s, [%s])", op, name, strings.Join(vals, " "))
	case realtime.FilterSize:
		return fmt.Sprintf("size(%s, %d)", name, f.Size)
	case realtime.FilterRegex:
		return fmt.Sprintf("regex(%s, %s)", name, f.Regex)
	}
	return fmt.Sprintf("%s(%s, %s)", op, name, renderValue(f.Value))
}

func renderValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Time:
		return "date:" + realtime.DateISO(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func TestParseAccepts(t *testing.T) {
	for _, tt := range []struct{ where, want string }{
		{``, "true"},
		{`null`, "true"},
		{`{}`, "true"},
		// The SDK's query methods, as in sdk-ops-spec A.5.
		{`{"name":"Tom & Jerry"}`, `eq(name, "Tom & Jerry")`},
		{`{"attr.type":"private"}`, `eq(attr:type, "private")`},
		{`{"type":"private"}`, `eq(attr:type, "private")`},
		{`{"attr.a.b-c._d":1.5}`, `eq(attr:a/b-c/_d, 1.5)`},
		{`{"name":{"$ne":"x"}}`, `ne(name, "x")`},
		{`{"attr.n":{"$gt":1,"$lte":10}}`, `and(gt(attr:n, 1), lte(attr:n, 10))`},
		{`{"lm":{"$gt":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}}`, `gt(lm, date:2024-01-02T03:04:05.678Z)`},
		{`{"createdAt":{"$lt":1704164645678}}`, `lt(createdAt, date:2024-01-02T03:04:05.678Z)`},
		{`{"updatedAt":{"$gte":{"iso":"2024-01-02T11:04:05.678+08:00","__type":"Date"}}}`, `gte(updatedAt, date:2024-01-02T03:04:05.678Z)`},
		{`{"attr.when":{"__type":"Date","iso":"2024-01-02T03:04:05Z"}}`, `eq(attr:when, date:2024-01-02T03:04:05.000Z)`},
		{`{"name":{"$exists":true},"attr.x":{"$exists":false}}`, `and(exists(name, true), exists(attr:x, false))`},
		{`{"objectId":{"$in":["a","b"]}}`, `in(objectId, ["a" "b"])`},
		{`{"attr.level":{"$nin":[1,"two",null,true]}}`, `nin(attr:level, [1 "two" null true])`},
		{`{"m":{"$all":["Tom","Jerry"]}}`, `all(m, ["Tom" "Jerry"])`},
		{`{"m":{"$size":2,"$all":["Tom","Jerry"]}}`, `and(size(m, 2), all(m, ["Tom" "Jerry"]))`},
		{`{"m":["Tom","Jerry","Tom"]}`, `and(all(m, ["Tom" "Jerry"]), size(m, 2))`},
		{`{"m":"Tom"}`, `eq(m, "Tom")`},
		{`{"mu":{"$in":["Tom"]}}`, `in(mu, ["Tom"])`},
		{`{"tr":true}`, `eq(tr, true)`},
		{`{"sys":{"$ne":true},"unique":false}`, `and(ne(sys, true), eq(unique, false))`},
		{`{"c":"Tom"}`, `eq(c, "Tom")`},
		{`{"name":{"$regex":"\\QTom (the cat)\\E"}}`, `regex(name, \QTom (the cat)\E)`},
		{`{"name":{"$regex":"^\\Qa\\E\\\\E\\Qb\\E"}}`, `regex(name, ^\Qa\E\\E\Qb\E)`},
		{`{"name":{"$regex":"tom","$options":"im"}}`, `regex(name, (?im)tom)`},
		{`{"name":{"$options":"s","$regex":"a.b"}}`, `regex(name, (?s)a.b)`},
		{`{"attr.tags":{"$all":["a","b"]},"attr.tags2":{"$size":0}}`, `and(all(attr:tags, ["a" "b"]), size(attr:tags2, 0))`},
		{`{"$and":[{"name":"a"},{"m":"Tom"}]}`, `and(eq(name, "a"), eq(m, "Tom"))`},
		{`{"$or":[{"name":"a"},{"name":"b"}],"tr":false}`, `and(or(eq(name, "a"), eq(name, "b")), eq(tr, false))`},
		{`{"$or":[{"name":"a"}]}`, `eq(name, "a")`},
		// ConversationQuery.and(q, emptyQuery) and or(q, emptyQuery).
		{`{"$and":[{"name":"a"},{}]}`, `eq(name, "a")`},
		{`{"$or":[{"name":"a"},{}]}`, "true"},
		{`{"name":{"$eq":"a"}}`, `eq(name, "a")`},
		{`{"attr.x":null}`, `eq(attr:x, null)`},
	} {
		f, err := Parse([]byte(tt.where), nil)
		if err != nil {
			t.Errorf("Parse(%s): %v", tt.where, err)
			continue
		}
		if got := render(f); got != tt.want {
			t.Errorf("Parse(%s) = %s, want %s", tt.where, got, tt.want)
		}
		if f != nil {
			if err := f.Validate(); err != nil {
				t.Errorf("Parse(%s) built an invalid tree: %v", tt.where, err)
			}
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tt := range []struct{ where, reason string }{
		{`[]`, "must be a JSON object"},
		{`"x"`, "must be a JSON object"},
		{`{"name":"a"`, "malformed JSON"},
		{`{"name":"a"} {}`, "after the object"},
		{`{"name":"a","name":"b"}`, "duplicate key"},
		// Field names: never anything a store could mistake for syntax.
		{`{"attr":{"a":1}}`, "attr.<key>"},
		{`{"attr.":1}`, "invalid custom attribute key"},
		{`{"attr.a..b":1}`, "invalid custom attribute key"},
		{`{"a') OR 1=1 --":1}`, "invalid custom attribute key"},
		{`{"attr.x\"]'":1}`, "invalid custom attribute key"},
		{`{"attr.0":1}`, "invalid custom attribute key"},
		{`{"attr.-1":1}`, "invalid custom attribute key"},
		{`{"attr.a.b.c.d.e":1}`, "1 to 4 keys"},
		{`{"attr.` + strings.Repeat("k", 65) + `":1}`, "invalid custom attribute key"},
		{`{"ключ":1}`, "invalid custom attribute key"},
		{`{"uniqueId":"x"}`, "not a queryable field"},
		{`{"$nor":[{"name":"a"}]}`, "unsupported operator"},
		{`{"$where":"sleep(10)"}`, "unsupported operator"},
		// Operators and values.
		{`{"name":{"$not":{"$eq":"a"}}}`, "unsupported operator $not"},
		{`{"name":{"$elemMatch":{}}}`, "unsupported operator"},
		{`{"name":{}}`, "empty condition"},
		{`{"name":{"a":1}}`, "objects are not values"},
		{`{"name":1}`, "name $eq takes a string"},
		{`{"tr":"yes"}`, "tr $eq takes a boolean"},
		{`{"tr":{"$gt":false}}`, "tr does not take $gt"},
		{`{"lm":{"$gt":"2024-01-01"}}`, "lm $gt takes a date"},
		{`{"lm":{"$gt":1.5}}`, "lm $gt takes a date"},
		{`{"lm":{"$gt":{"__type":"Date","iso":"yesterday"}}}`, "malformed date"},
		{`{"lm":{"$gt":{"__type":"Pointer","className":"_User"}}}`, "objects are not values"},
		{`{"lm":{"$gt":{"__type":"Bytes","iso":"x"}}}`, "only Date"},
		{`{"m":{"$gt":"a"}}`, "m does not take $gt"},
		{`{"m":{"$regex":"a"}}`, "m does not take $regex"},
		{`{"m":{"$size":-1}}`, "$size takes a whole number"},
		{`{"m":{"$size":1.5}}`, "$size takes a whole number"},
		{`{"m":{"$all":"Tom"}}`, "$all takes an array"},
		{`{"m":{"$all":[1]}}`, "takes a list of a string"},
		{`{"name":{"$all":["a"]}}`, "name does not take $all"},
		{`{"name":{"$in":[["a"]]}}`, "lists hold"},
		{`{"attr.a":["x","y"]}`, "equality to an array"},
		{`{"attr.a":{"$gt":true}}`, "takes a string, number or date"},
		{`{"attr.a":{"$exists":1}}`, "$exists takes true or false"},
		{`{"attr.a":{"$in":1}}`, "$in takes an array"},
		{`{"attr.a":{"$eq":[1]}}`, "takes a single value"},
		{`{"attr.a":1e400}`, "out of range"},
		{`{"name":{"$gt":"a","$gt":"b"}}`, "duplicate operator"},
		{`{"$and":[]}`, "at least one condition"},
		{`{"$or":{}}`, "takes an array"},
		{`{"$and":[1]}`, "expected"},
		// Regular expressions.
		{`{"name":{"$options":"i"}}`, "$options without $regex"},
		{`{"name":{"$regex":"a","$options":"x"}}`, `unsupported $options "x"`},
		{`{"name":{"$regex":"a","$options":"g"}}`, `unsupported $options "g"`},
		{`{"name":{"$regex":"(a"}}`, "invalid $regex: missing closing )"},
		{`{"name":{"$regex":"(?P<n>a)\\k<n>"}}`, "invalid $regex"},
		{`{"name":{"$regex":"` + strings.Repeat("a", 257) + `"}}`, "longer than 256 bytes"},
		{`{"name":{"$regex":"(?:a{1,30}){1,30}"}}`, "too complex"},
		{`{"name":{"$regex":"\\pL"}}`, "character ranges"},
		{`{"name":{"$regex":1}}`, "$regex takes a string"},
		// Sizes.
		{`{"name":"` + strings.Repeat("x", 1025) + `"}`, "at most 1024 bytes"},
		{`{"objectId":{"$in":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 1001), ",") + `]}}`, "at most 1000 values"},
	} {
		f, err := Parse([]byte(tt.where), nil)
		if err == nil {
			t.Errorf("Parse(%.80s) = %s, want an error with %q", tt.where, render(f), tt.reason)
			continue
		}
		var e *realtime.Error
		if !errors.As(err, &e) || e.Code != realtime.CodeConvQueryFailed {
			t.Errorf("Parse(%.80s): %v, want code 4310", tt.where, err)
			continue
		}
		if !strings.Contains(e.Detail, tt.reason) {
			t.Errorf("Parse(%.80s): reason %q, want it to contain %q", tt.where, e.Detail, tt.reason)
		}
	}
}

// nested returns {"$and":[{"$and":[... {"name":"x"} ...]}]}, n deep.
func nested(op string, n int) string {
	return strings.Repeat(`{"`+op+`":[`, n) + `{"name":"x"}` + strings.Repeat(`]}`, n)
}

func TestParseLimitsDepth(t *testing.T) {
	// Depth 8 is fine: the where object and 7 levels of $and.
	if _, err := Parse([]byte(nested("$and", 7)), nil); err != nil {
		t.Fatalf("7 nested $and: %v", err)
	}
	if _, err := Parse([]byte(nested("$or", 8)), nil); err == nil {
		t.Fatal("8 nested $or (depth 9) accepted")
	}
	// The attack of the old parser: 5,000 nested $and (60 KB) took about a
	// second and 300 MB. Refused after the first few levels, having read
	// a few dozen tokens and bytes of it.
	deep := nested("$and", 5000)
	p := newParser([]byte(deep), nil)
	_, err := p.parse()
	var e *realtime.Error
	if !errors.As(err, &e) || e.Code != realtime.CodeConvQueryFailed || !strings.Contains(e.Detail, "deeper than 8") {
		t.Fatalf("5000 nested $and: %v", err)
	}
	if p.tokens > 3*DefaultLimits.MaxDepth+3 {
		t.Errorf("refusing 5000 nested $and read %d tokens", p.tokens)
	}
	if off := p.dec.InputOffset(); off > 200 {
		t.Errorf("refusing 5000 nested $and read %d of %d bytes", off, len(deep))
	}
	// Anything over MaxBytes is refused before tokenizing.
	p = newParser([]byte(nested("$and", 6000)), nil)
	if _, err := p.parse(); err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") || p.tokens != 0 {
		t.Errorf("72 KB where: %v after %d tokens", err, p.tokens)
	}
}

func TestParseLimitsTerms(t *testing.T) {
	wide := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"$or":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"attr.k%d":%d}`, i, i)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	// 1 ($or) + 2 per element (the element, its condition).
	if _, err := Parse([]byte(wide(49)), nil); err != nil {
		t.Fatalf("99 terms: %v", err)
	}
	p := newParser([]byte(wide(10000)), &Limits{MaxBytes: 1 << 20})
	_, err := p.parse()
	if err == nil || !strings.Contains(err.Error(), "more than 100 terms") {
		t.Fatalf("20001 terms: %v", err)
	}
	if p.terms != 101 || p.tokens > 300 {
		t.Errorf("refusing 20001 terms counted %d terms, read %d tokens", p.terms, p.tokens)
	}
	// Operators count one term each.
	many := `{"name":{"$ne":"a"}` + strings.Repeat(`,"attr.x":{"$gt":1,"$lt":2}`, 1) + `}`
	if _, err := Parse([]byte(many), &Limits{MaxTerms: 2}); err == nil {
		t.Errorf("3 terms with MaxTerms 2 accepted")
	}
	// Values of all lists together.
	lists := `{"objectId":{"$in":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 800), ",") + `]},` +
		`"c":{"$nin":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 800), ",") + `]},` +
		`"name":{"$in":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 800), ",") + `]}}`
	if _, err := Parse([]byte(lists), nil); err == nil || !strings.Contains(err.Error(), "more than 2000 values") {
		t.Errorf("2400 list values: %v", err)
	}
}

func TestParseRegexSemantics(t *testing.T) {
	// contains() quotes with \Q..\E, escaping only the first \E of the text.
	for _, tt := range []struct {
		where   string
		matches []string
		not     []string
	}{
		{`{"name":{"$regex":"\\Qa.b(\\E"}}`, []string{"xa.b(y"}, []string{"axb("}},
		{`{"name":{"$regex":"^\\Qa\\E\\\\E\\Qb\\E"}}`, []string{`a\Eb`}, []string{"ab"}},
		{`{"name":{"$regex":"tom$","$options":"i"}}`, []string{"Big TOM"}, []string{"tommy"}},
		{`{"name":{"$regex":"^b","$options":"m"}}`, []string{"a\nb"}, []string{"ab"}},
		{`{"name":{"$regex":"a.b"}}`, []string{"axb"}, []string{"a\nb"}},
		{`{"name":{"$regex":"a.b","$options":"s"}}`, []string{"a\nb"}, nil},
	} {
		f, err := Parse([]byte(tt.where), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.where, err)
		}
		for _, s := range tt.matches {
			if !f.Match(&realtime.Conversation{Name: s}) {
				t.Errorf("%s does not match %q", tt.where, s)
			}
		}
		for _, s := range tt.not {
			if f.Match(&realtime.Conversation{Name: s}) {
				t.Errorf("%s matches %q", tt.where, s)
			}
		}
	}
}

// checkTree verifies what every accepted tree must satisfy: valid, within
// the depth and term limits.
func checkTree(t *testing.T, f *realtime.Filter, lim Limits) {
	t.Helper()
	if f == nil {
		return
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("accepted an invalid tree: %v", err)
	}
	var walk func(f *realtime.Filter, depth int) int
	walk = func(f *realtime.Filter, depth int) int {
		if depth > 2*lim.MaxDepth+2 {
			t.Fatalf("tree deeper than the limit allows")
		}
		n := 1
		for _, s := range f.Filters {
			n += walk(s, depth+1)
		}
		return n
	}
	if n := walk(f, 1); n > 2*lim.MaxTerms+1 {
		t.Fatalf("tree of %d nodes from at most %d terms", n, lim.MaxTerms)
	}
}

func FuzzParseWhere(f *testing.F) {
	for _, seed := range []string{
		`{"name":"x"}`,
		`{"attr.type":"private"}`,
		`{"m":{"$size":2,"$all":["a","b"]}}`,
		`{"objectId":{"$in":["5a5ecde6c3422b738c8779d7"]}}`,
		`{"lm":{"$gt":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}}`,
		`{"name":{"$regex":"\\Qx\\E","$options":"im"}}`,
		`{"$or":[{"tr":true},{"sys":true}],"$and":[{"attr.n":{"$gte":1}},{}]}`,
		`{"attr.tags":{"$nin":[1,null,"x",true]},"mu":{"$exists":false}}`,
		nested("$and", 5000),
		nested("$or", 9),
		`{"a":{"b":{"c":{}}}}`,
	} {
		f.Add([]byte(seed))
	}
	lim := DefaultLimits
	sample := &realtime.Conversation{ID: "5a5ecde6c3422b738c8779d7", Name: "x", Members: []string{"a", "b"},
		Attrs:     []byte(`{"type":"private","n":2,"tags":["x",1],"when":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}`),
		CreatedAt: time.UnixMilli(1), UpdatedAt: time.UnixMilli(2)}
	f.Fuzz(func(t *testing.T, where []byte) {
		p := newParser(where, nil)
		filter, err := p.parse()
		if err != nil {
			var e *realtime.Error
			if !errors.As(err, &e) || e.Code != realtime.CodeConvQueryFailed {
				t.Fatalf("error without code 4310: %v", err)
			}
		} else {
			checkTree(t, filter, lim)
			if filter != nil {
				filter.Match(sample)
			}
		}
		// Work is bounded by the limits, not by the input.
		if max := 8*(lim.MaxTerms+lim.MaxValues) + 64; p.tokens > max {
			t.Fatalf("read %d tokens (bound %d)", p.tokens, max)
		}
	})
}
