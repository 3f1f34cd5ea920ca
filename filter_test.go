package realtime_test

import (
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

func TestParseFieldKey(t *testing.T) {
	for _, tt := range []struct {
		key   string
		field realtime.FilterField
		path  []string
	}{
		{"name", realtime.FieldName, nil},
		{"m", realtime.FieldMembers, nil},
		{"lm", realtime.FieldLastMessageAt, nil},
		{"attr.type", realtime.FieldAttr, []string{"type"}},
		{"type", realtime.FieldAttr, []string{"type"}},
		{"attr.a.b_c.d-e", realtime.FieldAttr, []string{"a", "b_c", "d-e"}},
		{"attr.name", realtime.FieldAttr, []string{"name"}},
		{"_x.y", realtime.FieldAttr, []string{"_x", "y"}},
	} {
		f, p, err := realtime.ParseFieldKey(tt.key)
		if err != nil || f != tt.field || !slices.Equal(p, tt.path) {
			t.Errorf("ParseFieldKey(%q) = %q %q %v, want %q %q", tt.key, f, p, err, tt.field, tt.path)
		}
	}
	for _, key := range []string{"", "attr", "attr.", "$and", "uniqueId", "a b", "a'b", `a"b`, "a.1", "1a", "é", "a.b.c.d.e", "a;DROP"} {
		if _, _, err := realtime.ParseFieldKey(key); !errors.Is(err, realtime.ErrConvQueryFailed) {
			t.Errorf("ParseFieldKey(%q): %v, want 4310", key, err)
		}
	}
}

func TestParseSort(t *testing.T) {
	keys, err := realtime.ParseSort(" name, -attr.rank ,-lm,tr")
	want := []realtime.SortKey{
		{Field: realtime.FieldName},
		{Field: realtime.FieldAttr, Path: []string{"rank"}, Desc: true},
		{Field: realtime.FieldLastMessageAt, Desc: true},
		{Field: realtime.FieldTransient},
	}
	if err != nil || len(keys) != len(want) {
		t.Fatalf("ParseSort = %+v, %v", keys, err)
	}
	for i := range want {
		if keys[i].Field != want[i].Field || keys[i].Desc != want[i].Desc || !slices.Equal(keys[i].Path, want[i].Path) {
			t.Errorf("key %d = %+v, want %+v", i, keys[i], want[i])
		}
	}
	if keys, err := realtime.ParseSort(""); keys != nil || err != nil {
		t.Errorf("empty sort = %v %v", keys, err)
	}
	for _, bad := range []string{"m", "-mu", "name,", "-", "bogus'", "attr", "a,b,c,d,e,f,g,h,i"} {
		if _, err := realtime.ParseSort(bad); !errors.Is(err, realtime.ErrConvQueryFailed) {
			t.Errorf("ParseSort(%q): %v, want 4310", bad, err)
		}
	}
}

func TestFilterValidate(t *testing.T) {
	date := time.UnixMilli(1)
	for _, tt := range []struct {
		f  realtime.Filter
		ok bool
	}{
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldName, Value: "a"}, true},
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldName, Value: 1.0}, false},
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"a"}, Value: date}, true},
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"a'"}, Value: "x"}, false},
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldAttr, Value: "x"}, false},
		{realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldName, Path: []string{"a"}, Value: "x"}, false},
		{realtime.Filter{Op: realtime.FilterEq, Field: "bogus", Value: "x"}, false},
		{realtime.Filter{Op: realtime.FilterGt, Field: realtime.FieldTransient, Value: true}, false},
		{realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldName}, false},
		{realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldName, Regex: regexp.MustCompile("a")}, true},
		{realtime.Filter{Op: realtime.FilterSize, Field: realtime.FieldMembers, Size: -1}, false},
		{realtime.Filter{Op: realtime.FilterAnd}, false},
		{realtime.Filter{Op: realtime.FilterOr, Filters: []*realtime.Filter{nil}}, false},
		{realtime.Filter{Op: 99, Field: realtime.FieldName}, false},
	} {
		err := tt.f.Validate()
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, realtime.ErrConvQueryFailed) {
			t.Errorf("Validate(%+v) = %v, want ok %v", tt.f, err, tt.ok)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	c := &realtime.Conversation{
		ID: "5a5ecde6c3422b738c8779d7", Name: "Tom & Jerry", Creator: "Tom",
		Members: []string{"Jerry", "Tom"}, Muted: []string{"Jerry"},
		Attrs:     []byte(`{"type":"private","n":2,"f":1.5,"ok":true,"nil":null,"tags":["a",1,null],"o":{"k":"v"},"when":{"__type":"Date","iso":"2024-01-02T03:04:05.678Z"}}`),
		CreatedAt: at(1000), UpdatedAt: at(2000),
	}
	attr := func(op realtime.FilterOp, path string, v any) *realtime.Filter {
		return &realtime.Filter{Op: op, Field: realtime.FieldAttr, Path: []string{path}, Value: v}
	}
	list := func(op realtime.FilterOp, field realtime.FilterField, path string, vs ...any) *realtime.Filter {
		f := &realtime.Filter{Op: op, Field: field, Values: vs}
		if path != "" {
			f.Path = []string{path}
		}
		return f
	}
	when := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	for _, tt := range []struct {
		name string
		f    *realtime.Filter
		want bool
	}{
		{"string", attr(realtime.FilterEq, "type", "private"), true},
		{"string other type", attr(realtime.FilterEq, "n", "2"), false},
		{"number", attr(realtime.FilterEq, "n", 2.0), true},
		{"bool", attr(realtime.FilterEq, "ok", true), true},
		{"bool is not 1", attr(realtime.FilterEq, "ok", 1.0), false},
		{"null", attr(realtime.FilterEq, "nil", nil), true},
		{"null matches missing", attr(realtime.FilterEq, "nope", nil), true},
		{"null not a string", attr(realtime.FilterEq, "type", nil), false},
		{"array contains", attr(realtime.FilterEq, "tags", "a"), true},
		{"array contains number", attr(realtime.FilterEq, "tags", 1.0), true},
		{"array contains null", attr(realtime.FilterEq, "tags", nil), true},
		{"array does not contain", attr(realtime.FilterEq, "tags", "b"), false},
		{"object is no scalar", attr(realtime.FilterEq, "o", "v"), false},
		{"path", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldAttr, Path: []string{"o", "k"}, Value: "v"}, true},
		{"path through a scalar", &realtime.Filter{Op: realtime.FilterExists, Field: realtime.FieldAttr, Path: []string{"type", "k"}, Value: true}, false},
		{"date", attr(realtime.FilterEq, "when", when), true},
		{"date gt", attr(realtime.FilterGt, "when", when.Add(-time.Millisecond)), true},
		{"date not gt", attr(realtime.FilterGt, "when", when), false},
		{"ne missing", attr(realtime.FilterNe, "nope", "x"), true},
		{"ne array", attr(realtime.FilterNe, "tags", "a"), false},
		{"gt number", attr(realtime.FilterGt, "f", 1.0), true},
		{"gt other type", attr(realtime.FilterGt, "type", 1.0), false},
		{"lte string", attr(realtime.FilterLte, "type", "private"), true},
		{"exists null", attr(realtime.FilterExists, "nil", true), true},
		{"exists missing", attr(realtime.FilterExists, "nope", false), true},
		{"in", list(realtime.FilterIn, realtime.FieldAttr, "type", "x", "private"), true},
		{"in empty", list(realtime.FilterIn, realtime.FieldAttr, "type"), false},
		{"nin", list(realtime.FilterNin, realtime.FieldAttr, "tags", "x", 1.0), false},
		{"all", list(realtime.FilterAll, realtime.FieldAttr, "tags", "a", 1.0), true},
		{"all missing one", list(realtime.FilterAll, realtime.FieldAttr, "tags", "a", "b"), false},
		{"all of a scalar", list(realtime.FilterAll, realtime.FieldAttr, "type", "private"), true},
		{"all empty", list(realtime.FilterAll, realtime.FieldAttr, "nope"), true},
		{"size", &realtime.Filter{Op: realtime.FilterSize, Field: realtime.FieldAttr, Path: []string{"tags"}, Size: 3}, true},
		{"size of a scalar", &realtime.Filter{Op: realtime.FilterSize, Field: realtime.FieldAttr, Path: []string{"type"}, Size: 1}, false},
		{"regex attr", &realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldAttr, Path: []string{"type"}, Regex: regexp.MustCompile("^pri")}, true},
		{"regex not a string", &realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldAttr, Path: []string{"n"}, Regex: regexp.MustCompile("2")}, false},
		{"member", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldMembers, Value: "Tom"}, true},
		{"not member", &realtime.Filter{Op: realtime.FilterNe, Field: realtime.FieldMembers, Value: "Tom"}, false},
		{"members all", list(realtime.FilterAll, realtime.FieldMembers, "", "Tom", "Jerry"), true},
		{"members in", list(realtime.FilterIn, realtime.FieldMembers, "", "Kate", "Jerry"), true},
		{"members size", &realtime.Filter{Op: realtime.FilterSize, Field: realtime.FieldMembers, Size: 2}, true},
		{"muted", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldMuted, Value: "Jerry"}, true},
		{"name regex", &realtime.Filter{Op: realtime.FilterRegex, Field: realtime.FieldName, Regex: regexp.MustCompile(`\Q& J\E`)}, true},
		{"name gt", &realtime.Filter{Op: realtime.FilterGt, Field: realtime.FieldName, Value: "Tom"}, true},
		{"creator", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldCreator, Value: "Tom"}, true},
		{"tr", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldTransient, Value: false}, true},
		{"created", &realtime.Filter{Op: realtime.FilterLt, Field: realtime.FieldCreatedAt, Value: at(1001)}, true},
		{"lm without messages is createdAt", &realtime.Filter{Op: realtime.FilterEq, Field: realtime.FieldLastMessageAt, Value: at(1000)}, true},
		{"lm exists", &realtime.Filter{Op: realtime.FilterExists, Field: realtime.FieldLastMessageAt, Value: true}, false},
		{"or", &realtime.Filter{Op: realtime.FilterOr, Filters: []*realtime.Filter{attr(realtime.FilterEq, "type", "x"), attr(realtime.FilterEq, "n", 2.0)}}, true},
		{"and", &realtime.Filter{Op: realtime.FilterAnd, Filters: []*realtime.Filter{attr(realtime.FilterEq, "type", "x"), attr(realtime.FilterEq, "n", 2.0)}}, false},
	} {
		if err := tt.f.Validate(); err != nil {
			t.Errorf("%s: invalid: %v", tt.name, err)
			continue
		}
		if got := tt.f.Match(c); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
	c.LastMessage = &realtime.Message{Timestamp: 5000}
	if f := (&realtime.Filter{Op: realtime.FilterGt, Field: realtime.FieldLastMessageAt, Value: at(4999)}); !f.Match(c) {
		t.Error("lm is the last message's time")
	}
}
