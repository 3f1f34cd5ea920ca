package storetest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
	"github.com/leanhub/realtime/internal/convquery"
)

// queryFixture is a set of conversations covering what the query language
// distinguishes: attribute types, arrays, nested objects, dates, null and
// missing values, members, flags, messages, awkward names.
type queryFixture struct {
	s     realtime.Store
	convs map[string]*realtime.Conversation // by name, with LastMessage
	names map[string]string                 // id -> name
	// lmBetween is a time after alpha's message and before gamma's.
	lmBetween time.Time
	// createdGamma is gamma's creation time.
	createdGamma time.Time
}

const oReilly = `O'Reilly \ 100% "x"`

func newQueryFixture(t *testing.T, s realtime.Store) *queryFixture {
	fx := &queryFixture{s: s, convs: map[string]*realtime.Conversation{}, names: map[string]string{}}
	add := func(c *realtime.Conversation) {
		t.Helper()
		fx.names[create(t, s, c).ID] = c.Name
		tick()
	}
	add(&realtime.Conversation{Name: "alpha", Creator: "u1", Members: []string{"u1", "u2"}, Muted: []string{"u2"},
		Attrs: []byte(`{"type":"private","rank":3,"tags":["red","blue"],"score":1.5,"flag":true,
			"when":{"__type":"Date","iso":"2024-06-01T00:00:00.000Z"},
			"meta":{"level":2,"when":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}}`)})
	add(&realtime.Conversation{Name: "beta", Creator: "u3", Members: []string{"u1", "u3"}, Unique: true,
		Attrs: []byte(`{"type":"public","rank":"10","tags":"red","nil":null,"flag":false}`)})
	add(&realtime.Conversation{Name: "gamma", Creator: "u2", Members: []string{"u2", "u3", "u4"}, System: true,
		Attrs: []byte(`{"type":"private","rank":1,"tags":[],"quote":"O'Brien \\ \"x\"","ok":true}`)})
	add(&realtime.Conversation{Name: "delta room", Creator: "u1", Transient: true,
		Attrs: []byte(`{"rank":null,"meta":{"level":"2"},"type":{"k":"private"}}`)})
	add(&realtime.Conversation{Name: oReilly, Creator: "u1", Members: []string{"u1"}})
	add(&realtime.Conversation{Name: "zeta", Creator: "u4", Members: []string{"u4"},
		Attrs: []byte(`{"rank":2.5,"tags":["blue",["red"]],"when":{"__type":"Date","iso":"2023-12-31T00:00:00.000Z"}}`)})
	byName := map[string]string{}
	for id, n := range fx.names {
		byName[n] = id
	}
	text(t, s, byName["alpha"], "u1", "first")
	tick()
	fx.lmBetween = time.Now()
	tick()
	text(t, s, byName["gamma"], "u2", "second")
	for id, n := range fx.names {
		c, err := s.GetConversation(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		fx.convs[n] = c
	}
	fx.createdGamma = fx.convs["gamma"].CreatedAt
	return fx
}

// parse parses a where with the hub's parser.
func parse(t *testing.T, where string) *realtime.Filter {
	t.Helper()
	f, err := convquery.Parse([]byte(where), nil)
	if err != nil {
		t.Fatalf("parse %s: %v", where, err)
	}
	return f
}

// find runs a query and returns the names of the results, in order.
func (fx *queryFixture) find(t *testing.T, q realtime.ConversationQuery) []string {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	cs, err := fx.s.QueryConversations(ctx(t), q)
	if err != nil {
		t.Fatalf("QueryConversations(where %v, sort %q): %v", q.Where, q.Sort, err)
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		n, ok := fx.names[c.ID]
		if !ok {
			t.Fatalf("QueryConversations returned unknown conversation %s", c.ID)
		}
		out[i] = n
	}
	return out
}

// matching is what Filter.Match says the query must return.
func (fx *queryFixture) matching(f *realtime.Filter) []string {
	var out []string
	for n, c := range fx.convs {
		if f == nil || f.Match(c) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func testQueryWhere(t *testing.T, s realtime.Store) {
	fx := newQueryFixture(t, s)
	iso := func(tm time.Time) string {
		return fmt.Sprintf(`{"__type":"Date","iso":%q}`, realtime.DateISO(tm))
	}
	for _, tt := range []struct {
		where string
		want  string // names, comma-separated, sorted
	}{
		{`{}`, `O'Reilly \ 100% "x",alpha,beta,delta room,gamma,zeta`},
		{`{"name":"alpha"}`, "alpha"},
		{`{"name":"O'Reilly \\ 100% \"x\""}`, oReilly},
		{`{"name":"x' OR '1'='1"}`, ""},
		{`{"name":{"$in":["beta","gamma","nope"]}}`, "beta,gamma"},
		{`{"name":{"$nin":["beta","gamma"]}}`, `O'Reilly \ 100% "x",alpha,delta room,zeta`},
		// Byte order: "O'Reilly" sorts before lowercase letters.
		{`{"name":{"$gt":"delta"}}`, "delta room,gamma,zeta"},
		{`{"name":{"$lt":"a"}}`, oReilly},
		{`{"name":{"$regex":"a$"}}`, "alpha,beta,gamma,zeta"},
		{`{"name":{"$regex":"\\Q'reilly \\ 100%\\E","$options":"i"}}`, oReilly},
		{`{"name":{"$regex":"^\\Qdelta\\E\\b"}}`, "delta room"},
		{`{"name":{"$regex":"'; DROP TABLE conversations; --"}}`, ""},
		{`{"c":"u3"}`, "beta"},
		{`{"c":{"$ne":"u1"}}`, "beta,gamma,zeta"},
		{`{"attr.type":"private"}`, "alpha,gamma"},
		{`{"type":"private"}`, "alpha,gamma"},
		{`{"attr.type":{"$ne":"private"}}`, `O'Reilly \ 100% "x",beta,delta room,zeta`},
		{`{"attr.type":{"$regex":"^PRI","$options":"i"}}`, "alpha,gamma"},
		{`{"attr.type":{"$exists":true}}`, "alpha,beta,delta room,gamma"},
		{`{"attr.type.k":"private"}`, "delta room"},
		{`{"attr.tags":"red"}`, "alpha,beta"},
		{`{"attr.tags":"blue"}`, "alpha,zeta"},
		{`{"attr.tags":{"$all":["red","blue"]}}`, "alpha"},
		{`{"attr.tags":{"$all":["red"]}}`, "alpha,beta"},
		{`{"attr.tags":{"$size":0}}`, "gamma"},
		{`{"attr.tags":{"$size":2}}`, "alpha,zeta"},
		{`{"attr.tags":{"$in":["blue","green"]}}`, "alpha,zeta"},
		{`{"attr.tags":{"$nin":["red"]}}`, `O'Reilly \ 100% "x",delta room,gamma,zeta`},
		{`{"attr.rank":{"$gt":2}}`, "alpha,zeta"},
		{`{"attr.rank":{"$gte":1,"$lt":3}}`, "gamma,zeta"},
		{`{"attr.rank":{"$gte":"1"}}`, "beta"},
		{`{"attr.rank":3}`, "alpha"},
		{`{"attr.rank":3.0}`, "alpha"},
		{`{"attr.rank":"3"}`, ""},
		{`{"attr.rank":{"$in":[1,"10"]}}`, "beta,gamma"},
		{`{"attr.rank":null}`, `O'Reilly \ 100% "x",delta room`},
		{`{"attr.rank":{"$ne":null}}`, "alpha,beta,gamma,zeta"},
		{`{"attr.rank":{"$in":[null,3]}}`, `O'Reilly \ 100% "x",alpha,delta room`},
		{`{"attr.rank":{"$exists":false}}`, oReilly},
		{`{"attr.score":{"$lte":1.5}}`, "alpha"},
		{`{"attr.meta.level":2}`, "alpha"},
		{`{"attr.meta.level":"2"}`, "delta room"},
		{`{"attr.meta.when":{"$lt":{"__type":"Date","iso":"2025-01-01T00:00:00.000Z"}}}`, "alpha"},
		{`{"attr.meta.when":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}`, "alpha"},
		{`{"attr.when":{"__type":"Date","iso":"2023-12-31T00:00:00Z"}}`, "zeta"},
		{`{"attr.when":{"$in":[{"__type":"Date","iso":"2023-12-31T00:00:00Z"}]}}`, "zeta"},
		{`{"attr.flag":true}`, "alpha"},
		{`{"attr.flag":{"$ne":true}}`, `O'Reilly \ 100% "x",beta,delta room,gamma,zeta`},
		{`{"attr.flag":false}`, "beta"},
		{`{"attr.ok":1}`, ""},
		{`{"attr.nil":{"$exists":true}}`, "beta"},
		{`{"attr.quote":"O'Brien \\ \"x\""}`, "gamma"},
		{`{"m":"u1"}`, `O'Reilly \ 100% "x",alpha,beta`},
		{`{"m":{"$ne":"u1"}}`, "delta room,gamma,zeta"},
		{`{"m":{"$all":["u1","u2"]}}`, "alpha"},
		{`{"m":{"$all":["u2","u1","u2"]}}`, "alpha"},
		{`{"m":{"$in":["u4","u2"]}}`, "alpha,gamma,zeta"},
		{`{"m":{"$nin":["u1"]}}`, "delta room,gamma,zeta"},
		{`{"m":{"$size":3}}`, "gamma"},
		{`{"m":{"$size":0}}`, "delta room"},
		{`{"m":["u2","u1"]}`, "alpha"},
		{`{"m":{"$size":2,"$all":["u1"]}}`, "alpha,beta"},
		{`{"mu":"u2"}`, "alpha"},
		{`{"mu":{"$size":0}}`, `O'Reilly \ 100% "x",beta,delta room,gamma,zeta`},
		{`{"tr":true}`, "delta room"},
		{`{"sys":true}`, "gamma"},
		{`{"unique":true}`, "beta"},
		{`{"tr":{"$ne":true},"sys":false}`, `O'Reilly \ 100% "x",alpha,beta,zeta`},
		{`{"tr":{"$in":[true,false]}}`, `O'Reilly \ 100% "x",alpha,beta,delta room,gamma,zeta`},
		{`{"tr":{"$nin":[false]}}`, "delta room"},
		{`{"lm":{"$exists":true}}`, "alpha,gamma"},
		{`{"lm":{"$gt":` + iso(fx.lmBetween) + `}}`, "gamma"},
		{`{"lm":{"$gt":` + iso(fx.lmBetween) + `},"m":"u1"}`, ""},
		{`{"createdAt":{"$gte":` + iso(fx.createdGamma) + `}}`, `O'Reilly \ 100% "x",delta room,gamma,zeta`},
		{fmt.Sprintf(`{"createdAt":{"$lt":%d}}`, fx.createdGamma.UnixMilli()), "alpha,beta"},
		{fmt.Sprintf(`{"createdAt":%d}`, fx.createdGamma.UnixMilli()), "gamma"},
		{`{"updatedAt":{"$gt":{"__type":"Date","iso":"2000-01-01T00:00:00.000Z"}}}`, `O'Reilly \ 100% "x",alpha,beta,delta room,gamma,zeta`},
		{`{"$or":[{"tr":true},{"attr.rank":{"$gt":2.9}}]}`, "alpha,delta room"},
		{`{"$and":[{"attr.type":"private"},{"m":"u4"}]}`, "gamma"},
		{`{"$or":[{"$and":[{"m":"u1"},{"attr.flag":false}]},{"name":{"$regex":"^z"}}]}`, "beta,zeta"},
		{`{"objectId":{"$in":["` + fx.convs["alpha"].ID + `","` + fx.convs["zeta"].ID + `","0123456789abcdef01234567"]}}`, "alpha,zeta"},
		{`{"objectId":"` + fx.convs["beta"].ID + `"}`, "beta"},
		{`{"objectId":{"$exists":false}}`, ""},
	} {
		f := parse(t, tt.where)
		got := fx.find(t, realtime.ConversationQuery{Where: f})
		slices.Sort(got)
		if g := strings.Join(got, ","); g != tt.want {
			t.Errorf("where %s = [%s], want [%s]", tt.where, g, tt.want)
		}
		if ref := fx.matching(f); !slices.Equal(got, ref) {
			t.Errorf("where %s = %q, Filter.Match says %q", tt.where, got, ref)
		}
	}
	// The old fields still apply, together with Where.
	if got := fx.find(t, realtime.ConversationQuery{Member: "u2", Where: parse(t, `{"attr.type":"private"}`), Sort: "name"}); !slices.Equal(got, []string{"alpha", "gamma"}) {
		t.Errorf("Member u2 and attr.type = %v", got)
	}
	// Paging applies after the filter.
	if got := fx.find(t, realtime.ConversationQuery{Where: parse(t, `{"attr.rank":{"$exists":true}}`), Sort: "name", Limit: 2, Skip: 1}); !slices.Equal(got, []string{"beta", "delta room"}) {
		t.Errorf("filter with limit 2 skip 1 = %v", got)
	}
}

func testQuerySort(t *testing.T, s realtime.Store) {
	fx := newQueryFixture(t, s)
	// groups checks an order whose groups (separated by |) may be in any
	// order inside (ties are broken by id, which is random within a
	// second).
	check := func(sort, want string) {
		t.Helper()
		got := fx.find(t, realtime.ConversationQuery{Sort: sort})
		i := 0
		for _, group := range strings.Split(want, "|") {
			names := strings.Split(group, ",")
			if i+len(names) > len(got) {
				t.Errorf("sort %q = %q, want %s", sort, got, want)
				return
			}
			part := slices.Sorted(slices.Values(got[i : i+len(names)]))
			if !slices.Equal(part, slices.Sorted(slices.Values(names))) {
				t.Errorf("sort %q = %q, want %s", sort, got, want)
				return
			}
			i += len(names)
		}
		if i != len(got) {
			t.Errorf("sort %q = %q, want %s", sort, got, want)
		}
	}
	check("name", oReilly+"|alpha|beta|delta room|gamma|zeta")
	check("-name", "zeta|gamma|delta room|beta|alpha|"+oReilly)
	// Missing and null first, then numbers, then strings.
	check("attr.rank", oReilly+",delta room|gamma|zeta|alpha|beta")
	check("-attr.rank", "beta|alpha|zeta|gamma|"+oReilly+",delta room")
	check("rank", oReilly+",delta room|gamma|zeta|alpha|beta")
	// Booleans before numbers before strings, objects last.
	check("attr.meta.level,name", oReilly+"|beta|gamma|zeta|alpha|delta room")
	check("attr.type,name", oReilly+"|zeta|alpha|gamma|beta|delta room")
	// Dates by time, after the other types.
	check("attr.when,name", oReilly+"|beta|delta room|gamma|zeta|alpha")
	check("-attr.when,name", "alpha|zeta|"+oReilly+"|beta|delta room|gamma")
	check("attr.flag,-name", "zeta|gamma|delta room|"+oReilly+"|beta|alpha")
	check("createdAt", "alpha|beta|gamma|delta room|"+oReilly+"|zeta")
	check("-createdAt", "zeta|"+oReilly+"|delta room|gamma|beta|alpha")
	check("-lm", "gamma|alpha|zeta|"+oReilly+"|delta room|beta")
	check("tr,sys,-unique,name", "beta|"+oReilly+"|alpha|zeta|gamma|delta room")
	check("c,name", oReilly+"|alpha|delta room|gamma|beta|zeta")
	check("-updatedAt", "zeta|"+oReilly+"|delta room|gamma|beta|alpha")
	for _, bad := range []string{"m", "-mu", "attr", "name,", "a b"} {
		if _, err := s.QueryConversations(ctx(t), realtime.ConversationQuery{Sort: bad}); !isCode(err, realtime.CodeConvQueryFailed) {
			t.Errorf("sort %q: %v, want 4310", bad, err)
		}
	}
}

// testQueryHandBuilt checks that a store refuses filters no parser would
// build, whatever their fields and paths hold, and treats every value as
// data.
func testQueryHandBuilt(t *testing.T, s realtime.Store) {
	fx := newQueryFixture(t, s)
	for _, f := range []*realtime.Filter{
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"a') OR 1=1 --"}, Value: "x"},
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{`a"."b`}, Value: "x"},
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"a}'", "b"}, Value: "x"},
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"0"}, Value: "x"},
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Value: "x"},
		{Op: realtime.FilterEq, Field: "name = name OR 1", Value: "x"},
		{Op: realtime.FilterEq, Field: realtime.FieldName, Value: 1},
		{Op: realtime.FilterGt, Field: realtime.FieldMembers, Value: "u1"},
		{Op: realtime.FilterRegex, Field: realtime.FieldName},
		{Op: realtime.FilterOr},
		{Op: realtime.FilterAnd, Filters: []*realtime.Filter{nil}},
		{Op: 0, Field: realtime.FieldName, Value: "x"},
	} {
		_, err := s.QueryConversations(ctx(t), realtime.ConversationQuery{Where: f})
		if !isCode(err, realtime.CodeConvQueryFailed) {
			t.Errorf("hand-built filter %+v: %v, want 4310", f, err)
		}
	}
	// Values are data: quotes, backslashes, SQL and regex syntax.
	for _, f := range []*realtime.Filter{
		{Op: realtime.FilterEq, Field: realtime.FieldName, Value: "'; DELETE FROM conversations; --"},
		{Op: realtime.FilterIn, Field: realtime.FieldName, Values: []any{`\'`, `");`, "?", "$1"}},
		{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"type"}, Value: `private' OR '1'='1`},
		{Op: realtime.FilterGt, Field: realtime.FieldAttr, Path: []string{"type"}, Value: `~'`},
		{Op: realtime.FilterRegex, Field: realtime.FieldName, Regex: regexp.MustCompile(`'\)|\?|\$1`)},
		{Op: realtime.FilterRegex, Field: realtime.FieldAttr, Path: []string{"type"}, Regex: regexp.MustCompile(`(?i)'; DROP`)},
	} {
		got := fx.find(t, realtime.ConversationQuery{Where: f})
		if len(got) != 0 {
			t.Errorf("filter %+v matched %q", f, got)
		}
	}
	if got := fx.find(t, realtime.ConversationQuery{}); len(got) != len(fx.convs) {
		t.Errorf("after the injection attempts: %d conversations, want %d", len(got), len(fx.convs))
	}
	// The regex function sees the text as it is stored.
	f := &realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldName, Regex: regexp.MustCompile(`^O'Reilly \\ 100% "x"$`)}
	if got := fx.find(t, realtime.ConversationQuery{Where: f}); !slices.Equal(got, []string{oReilly}) {
		t.Errorf("regex with quotes and backslashes = %q", got)
	}
}

// testQueryRegexSemantics runs patterns whose meaning differs between RE2
// and other dialects (POSIX, PCRE) and checks the store agrees with Go.
func testQueryRegexSemantics(t *testing.T, s realtime.Store) {
	texts := []string{"abc", "ABC", "a\nb", "a.b", "x y", "héllo", "HÉLLO", "k", "K", "\u212a", "日本語", "a+b", `a\b`, "tab\tx", "", "a_b", "ab\n", "\U0001F600"}
	ids := map[string]string{}
	for _, txt := range texts {
		c := create(t, s, &realtime.Conversation{Name: txt, Members: []string{"re"}})
		ids[c.ID] = txt
	}
	for _, pattern := range []string{
		`\Qa.b\E`, `a.b`, `(?s)a.b`, `^b`, `(?m)^b`, `a$`, `(?m)a$`, `c$`, `b\n?$`, `\Aab\z`,
		`(?i)abc`, `(?i)héllo`, `(?i)k`, `[[:upper:]]+`, `\w+`, `^\w+$`, `\d`, `\s`, `\S+`, `\bb`, `\Bb`, `a\b`,
		`[^a-z]`, `[^\n]+$`, `.`, `^.$`, `^$`, `x*`, `a+?b`, `(a|b)c?`, `(?:ab){1,2}`, `a{2,}`, `日本`, `[本-語]`,
		`\x{1F600}`, `\p{Han}`, `\PL`, `[\\]`, `\\`, `\t`, `\.`, `(?i)[a-c]{3}`, `(?U)a+`, `\Q\E`, `(?-s:.)`,
		`(?i)\x{212a}`, `[[:^alpha:]]`, `^(?:)$`,
	} {
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		f := &realtime.Filter{Op: realtime.FilterAnd, Filters: []*realtime.Filter{
			{Op: realtime.FilterEq, Field: realtime.FieldMembers, Value: "re"},
			{Op: realtime.FilterRegex, Field: realtime.FieldName, Regex: re},
		}}
		cs, err := s.QueryConversations(ctx(t), realtime.ConversationQuery{Where: f, Limit: 1000})
		if err != nil {
			t.Errorf("regex %s: %v", pattern, err)
			continue
		}
		var got, want []string
		for _, c := range cs {
			got = append(got, ids[c.ID])
		}
		for _, txt := range texts {
			if re.MatchString(txt) {
				want = append(want, txt)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("regex %s matched %q, Go's regexp %q", pattern, got, want)
		}
	}
}

func isCode(err error, code int) bool {
	var e *realtime.Error
	return errors.As(err, &e) && e.Code == code
}
